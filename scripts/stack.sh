#!/usr/bin/env bash
# The local stack: DynamoDB Local + the local server (`local-api`: both functions' axum routers
# on one port, routed as API Gateway routes them). No Docker, no AWS account, no emulator.
#
#   scripts/stack.sh run            dev server at http://127.0.0.1:${PORT:-9000}, data kept under
#                                   .local/dynamodb, the README's example group seeded; Ctrl-C
#                                   stops everything it started.
#   scripts/stack.sh test CMD...    throwaway stack (in-memory DynamoDB Local, free ports); runs
#                                   CMD with API_URL, AWS_ENDPOINT_URL_DYNAMODB and the table
#                                   names set, stops everything on success and failure alike, and exits
#                                   with CMD's status.
#
# Another DynamoDB: with AWS_ENDPOINT_URL_DYNAMODB set (a proxy, another DynamoDB Local), or with
# DYNAMODB=aws (the AWS account of the usual AWS_PROFILE / AWS_REGION), no DynamoDB Local is
# started. `run` then uses $LICENSES_TABLE / $USER_SERVICES_TABLE (created if missing); `test`
# creates tables of its own with a random suffix and deletes them afterwards.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/tools.sh
. "$ROOT/scripts/tools.sh"

mode=${1:-}
shift || true
case "$mode" in
  run|test) ;;
  *) echo "usage: scripts/stack.sh run | scripts/stack.sh test CMD..." >&2; exit 2 ;;
esac

ensure_tools

# Everything started here runs in its own process group, so cleanup reaches grandchildren too
# (cargo run starts the server as a grandchild).
groups=()
scratch=
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pg
  for pg in "${groups[@]}"; do kill -TERM -- "-$pg" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pg in "${groups[@]}"; do kill -0 -- "-$pg" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pg in "${groups[@]}"; do kill -KILL -- "-$pg" 2>/dev/null || true; done
  if [ -n "${drop_tables:-}" ] && [ -n "${target:-}" ]; then
    "$target/debug/local-db" drop-tables || true
  fi
  [ -n "${scratch:-}" ] && rm -rf "$scratch"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for() { # wait_for PID SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds, while PID lives
  local pid=$1 deadline=$((SECONDS + $2)) what=$3
  shift 3
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "$what: the process exited" >&2; return 1; fi
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for $what" >&2; return 1; fi
    sleep 0.2
  done
}

external=
if [ "${DYNAMODB:-}" = aws ]; then
  external=aws
  unset AWS_ENDPOINT_URL_DYNAMODB
elif [ -n "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]; then
  external=endpoint
fi

if [ "$mode" = run ]; then
  dynamo_port=${DYNAMODB_PORT:-8000}
  api_port=${PORT:-9000}
  mkdir -p .local/dynamodb
  store=(-dbPath "$ROOT/.local/dynamodb")
  log=$ROOT/.local/dynamodb.log
else
  dynamo_port=$(free_port)
  api_port=$(free_port)
  store=(-inMemory)
  scratch=$(mktemp -d -t licensing-stack.XXXXXX)
  log=$scratch/dynamodb.log
fi

export LICENSES_TABLE=${LICENSES_TABLE:-licenses}
export USER_SERVICES_TABLE=${USER_SERVICES_TABLE:-user-services}
export API_URL="http://127.0.0.1:$api_port"
# local-api serves the API reference at /docs from this checkout (openapi.yaml, .tools/).
export LICENSING_ROOT="$ROOT"

if [ -z "$external" ]; then
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$dynamo_port"
  export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-local}
  export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-local}
  export AWS_REGION=${AWS_REGION:-us-east-1}
  export AWS_EC2_METADATA_DISABLED=true
  dir=$(dynamodb_local_dir)
  # From its own working directory: DynamoDB Local writes a metadata file there.
  (cd "$(dirname "$log")" && exec setsid java -Djava.library.path="$dir/DynamoDBLocal_lib" \
    -jar "$dir/DynamoDBLocal.jar" -port "$dynamo_port" -sharedDb -disableTelemetry "${store[@]}" \
    >"$log" 2>&1) &
  groups+=($!)
  if ! wait_for $! 60 "DynamoDB Local on port $dynamo_port" curl -s -o /dev/null "$AWS_ENDPOINT_URL_DYNAMODB"; then
    tail -n 20 "$log" >&2
    exit 1
  fi
else
  echo "DynamoDB: ${AWS_ENDPOINT_URL_DYNAMODB:-AWS (region ${AWS_REGION:-from the profile})}; no DynamoDB Local started" >&2
  if [ "$external" = endpoint ] && [ -z "${AWS_PROFILE:-}${AWS_ACCESS_KEY_ID:-}" ]; then
    # A proxy or another DynamoDB Local: any credentials sign.
    export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
    export AWS_REGION=${AWS_REGION:-us-east-1} AWS_EC2_METADATA_DISABLED=true
  fi
  if [ "$mode" = test ]; then
    # Tables of this run only, gone afterwards.
    suffix=$(python3 -c 'import secrets; print(secrets.token_hex(4))')
    export LICENSES_TABLE="licenses-test-$suffix" USER_SERVICES_TABLE="user-services-test-$suffix"
    drop_tables=1
  fi
fi

# The local server and the table tool. (tests/smoke.rs builds the binaries it runs.)
cargo build --quiet -p local-api -p api-tests --bin local-api --bin local-db
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
"$target/debug/local-db" create-tables

if [ "$mode" = run ]; then
  # The README's examples only where nothing can be a real account's data.
  [ -z "$external" ] && "$target/debug/local-db" seed
  if [ -z "$external" ]; then
    echo "DynamoDB Local on :$dynamo_port (data in .local/dynamodb); API at $API_URL" >&2
  else
    echo "tables $LICENSES_TABLE and $USER_SERVICES_TABLE; API at $API_URL" >&2
  fi
  echo "try: curl $API_URL/api/v1/tenants/foo/groups/foogroup/licenses/?licensed=true" >&2
  echo "the API reference: $API_URL/docs" >&2
  # In a group of its own like everything else, so Ctrl-C or a TERM to this script stops it too.
  PORT=$api_port setsid "$target/debug/local-api" &
  groups+=($!)
  wait $!
  exit $?
fi

server_log=$scratch/server.log
PORT=$api_port setsid "$target/debug/local-api" >"$server_log" 2>&1 &
groups+=($!)
ready() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$API_URL/api/v1/tenants/ready/licenses/")" = 200 ]
}
if ! wait_for $! 60 "local-api on port $api_port" ready; then
  tail -n 40 "$server_log" >&2
  exit 1
fi
set +e
"$@"
status=$?
set -e
if [ $status -ne 0 ]; then
  # The server's own messages and any errors, without the per-request log lines.
  echo "--- local-api, other than request logs ---" >&2
  grep -v -e '"message":"request"' -e '"_aws":' "$server_log" | tail -n 60 >&2 || true
fi
exit $status
