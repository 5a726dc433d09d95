#!/usr/bin/env bash
# `make test`: formatting, clippy, cfn-lint on template.yaml, then every test of the workspace
# inside a throwaway local stack (scripts/stack.sh test), which is stopped however the tests end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. "$ROOT/scripts/tools.sh"
ensure_tools

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --quiet --workspace --all-targets -- -D warnings
echo "== cfn-lint template.yaml" >&2
cfn-lint template.yaml
echo "== tests and fuzzing (local stack)" >&2
log=$(mktemp -t licensing-tests.XXXXXX)
trap 'rm -f "$log"' EXIT
# Every test of the workspace, then schemathesis from openapi.yaml, in one throwaway stack.
scripts/stack.sh test bash -c 'cargo test --workspace --tests && scripts/fuzz.sh' 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The figures (tests/figures.rs), each alone in a stack of its own: a DynamoDB Local that has
# held the whole suite's tables is not one to measure with.
if [ "$status" -eq 0 ]; then
  scripts/stack.sh test cargo test -p api-tests --test figures -- --ignored --nocapture 2>&1 \
    | tee -a "$log"
  status=${PIPESTATUS[0]}
fi
# One closing line over both runners.
python3 - "$log" "$status" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
passed = sum(int(n) for n in re.findall(r"test result: \w+\. (\d+) passed", text))
failed = sum(int(n) for n in re.findall(r"(\d+) failed;", text))
cases = re.findall(r"(\d+) generated, (\d+) passed", text)
fuzzed = int(cases[-1][1]) if cases else 0
if int(sys.argv[2]) != 0 and failed == 0:
    failed = 1  # a fuzzing failure, or a runner that stopped early
print(f"summary: {passed + fuzzed} passed, {failed} failed")
PY
exit "$status"
