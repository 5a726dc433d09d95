#!/usr/bin/env bash
# `make soak`: the model test (tests/model.rs) on fresh random seeds for MINUTES (default 10),
# in a throwaway local stack; each failing seed is printed with the shortest sequence found that
# still fails. SEED replays one seed instead; OPS sets the length of a sequence (default 100).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ -n "${SEED:-}" ]; then
  unset MINUTES
  echo "== the model test, seed $SEED, ${OPS:-100} steps" >&2
else
  export MINUTES=${MINUTES:-10}
  echo "== the model test on random seeds for $MINUTES minutes, ${OPS:-100} steps each" >&2
fi
exec scripts/stack.sh test cargo test -p api-tests --test model -- --nocapture \
  random_sequences_follow_the_model
