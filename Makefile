# The commands of a fresh clone (see README.md). Each installs what it needs into .tools/.
.PHONY: run test package soak bench

# Serve the API at http://127.0.0.1:9000 (DynamoDB Local + the local server); Ctrl-C stops it.
run:
	scripts/stack.sh run

# Lint, then every test (unit, store and HTTP against DynamoDB Local, events, template, fuzzing).
test:
	scripts/test.sh

# sam build of the arm64 functions, and each bootstrap's size.
package:
	scripts/package.sh

# The model test on fresh random seeds for MINUTES (default 10); SEED replays one, OPS sets length.
soak:
	scripts/soak.sh

# Release builds of the functions beside floor functions under a loopback Lambda Runtime API:
# warm p50/p99, ratios to the floors, DynamoDB round trips, cold start, peak RSS, sizes.
bench:
	scripts/bench.sh
