#!/usr/bin/env bash
# `make bench`: release builds of the functions and of the floor function (one build, so they
# share features and profile), then the bench harness (bench/) in a throwaway local stack and
# licensing-audit of what it wrote (every counter equal to its records), then
# the sizes: each release binary and its zip here (x86_64 or whatever this machine is), and the
# arm64 bootstraps of `make package` when .aws-sam/build holds them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. "$ROOT/scripts/tools.sh"
ensure_tools

echo "== release builds" >&2
cargo build --release --quiet -p licenses -p user-services -p floor
# Built on its own: its features (a server, process control) stay out of the binaries measured.
cargo build --release --quiet -p licensing-bench
# The audit of what the bench wrote (a debug build, as the tests use).
cargo build --quiet -p licensing-audit
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
echo "== bench (DynamoDB Local, loopback Lambda Runtime API), then licensing-audit of its table" >&2
scripts/stack.sh test bash -c '"$1/licensing-bench" "$1" && "$2/licensing-audit"' bench \
  "$target/release" "$target/debug"

python3 - "$target/release" <<'PY'
import io, os, sys, zipfile
def zipped(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(path, "bootstrap")
    return len(buf.getvalue())
rows = [(f"{name} (release, {os.uname().machine})", os.path.join(sys.argv[1], name))
        for name in ("licenses", "user-services", "floor")]
rows += [(f"{fn} bootstrap (sam build, arm64)", f".aws-sam/build/{fn}/bootstrap")
         for fn in ("LicensesFunction", "UserServicesFunction")]
for label, path in rows:
    if os.path.exists(path):
        print(f"{label:<48} {os.path.getsize(path)/1e6:6.2f} MB, zip {zipped(path)/1e6:5.2f} MB")
    else:
        print(f"{label:<48} (absent: run make package)")
PY
