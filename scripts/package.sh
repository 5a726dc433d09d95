#!/usr/bin/env bash
# `make package`: `sam build` of template.yaml as AWS runs it (arm64, provided.al2023), through
# cargo-lambda (which adds the aarch64 target with rustup and links with zig), then each
# function's bootstrap and zip size. Telemetry off; nothing prompts.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. "$ROOT/scripts/tools.sh"
ensure_package_tools
export SAM_CLI_TELEMETRY=0
# sam build asks for the beta feature of rust-cargolambda builds; answer it here, not at a prompt.
sam build --beta-features --no-cached 2>&1 | tail -n 20
for fn in LicensesFunction UserServicesFunction; do
  bootstrap=.aws-sam/build/$fn/bootstrap
  [ -f "$bootstrap" ] || { echo "no $bootstrap" >&2; exit 1; }
  # ELF e_machine (offset 18, little-endian) 183 is AArch64, as template.yaml asks.
  machine=$(python3 -c 'import sys; print(int.from_bytes(open(sys.argv[1], "rb").read(20)[18:20], "little"))' "$bootstrap")
  [ "$machine" = 183 ] || { echo "$bootstrap is not arm64 (ELF machine $machine)" >&2; exit 1; }
  # The zip sam deploy uploads (deflate, as sam packages it).
  zipped=$(python3 -c 'import io, sys, zipfile
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z: z.write(sys.argv[1], "bootstrap")
print(len(b.getvalue()))' "$bootstrap")
  echo "$fn bootstrap: $(stat -c %s "$bootstrap") bytes, zip $zipped bytes"
done
