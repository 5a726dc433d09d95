# The two commands of a fresh clone (see README.md). Both install what they need into .tools/.
.PHONY: run test

# Serve the API at http://127.0.0.1:9000 (DynamoDB Local + cargo lambda watch); Ctrl-C stops it.
run:
	scripts/stack.sh run

# Lint, then every test (unit, store against DynamoDB Local, HTTP through the Lambda emulator).
test:
	scripts/test.sh
