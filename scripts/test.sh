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
echo "== tests (local stack)" >&2
scripts/stack.sh test cargo test --workspace --tests
