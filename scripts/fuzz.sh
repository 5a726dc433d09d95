#!/usr/bin/env bash
# Fuzzes the API from openapi.yaml with schemathesis, inside a stack started by
# `scripts/stack.sh test` (API_URL is the Lambda emulator). Requests go through scripts/apigw.py,
# which plays API Gateway with an operator's token, so the authorization check stays on.
# Checks: no 5xx, and every status, content type, header and body conforms to the spec.
# Bounded: a fixed number of examples per operation and a time budget. One worker: with several,
# schemathesis 4.32.5 (hypothesis) now and then stops on an internal race of its own.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
python3 "$ROOT/scripts/apigw.py" "$API_URL" "$port" &
gateway=$!
trap 'kill $gateway 2>/dev/null || true' EXIT
# Wait for the port to accept connections (a probe request would be an invocation of its own).
python3 - "$port" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)
PY
cd "$ROOT"
schemathesis run openapi.yaml \
  --url "http://127.0.0.1:$port" \
  --phases examples,coverage,fuzzing \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-examples "${FUZZ_EXAMPLES:-10}" \
  --max-time "${FUZZ_SECONDS:-150}" \
  --seed 1 \
  --workers 1 \
  --request-timeout 30 \
  --warnings off
