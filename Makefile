# pgprompt: the two commands of the README, plus stop and bench.
# Scripts live in .ci/; settings in pgrx.toml.

.PHONY: run test stop bench fidelity package

# Build, install, start a local cluster with the extension and examples, demo it.
run:
	@bash .ci/up

# Everything `run` sets up, then every test layer.
test:
	@bash .ci/test

# Stop the local cluster.
stop:
	@bash .ci/down

# Render throughput next to SELECT 1 on the same cluster (see README).
bench:
	@bash .ci/bench

# Rendering agreement with Python's Jinja2 on third-party templates (see README).
fidelity:
	@bash .ci/fidelity

# Debian packages of the extension and the CLI in target/package/ (see README).
package:
	@bash .ci/package
