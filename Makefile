# The commands of a fresh clone (see README.md). Each installs what it needs into .tools/.
.PHONY: run test package

# Serve the API at http://127.0.0.1:9000 (DynamoDB Local + the local server); Ctrl-C stops it.
run:
	scripts/stack.sh run

# Lint, then every test (unit, store and HTTP against DynamoDB Local, events, template, fuzzing).
test:
	scripts/test.sh

# sam build of the arm64 functions, and each bootstrap's size.
package:
	scripts/package.sh
