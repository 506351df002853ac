# pgprompt: the two commands of the README, plus stop and bench.
# Scripts live in .ci/; settings in pgrx.toml.

.PHONY: run test test-quick stop bench fidelity package model model-unseen guard-eval

# PG=18 builds and tests against PostgreSQL 18 instead of the default 15.
ifdef PG
export PG
endif

# Build, install, start a local cluster with the extension and examples, demo it.
run:
	@bash .ci/up

# Everything `run` sets up, then every test layer (and the integration
# tests on PostgreSQL 18 too, and the Debian packages).
test:
	@bash .ci/test

# The test layers on one major only (PG, default 15): for iteration.
test-quick:
	@QUICK=1 bash .ci/test

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

# Rebuild the learned injection detector from its pinned public sources.
model:
	@bash extension/guard_model/train.sh

# How the detector does on each training source when trained without it.
model-unseen:
	@bash extension/guard_model/train.sh --leave-one-out

# The injection guardrail on the collections reserved for evaluation (see README).
guard-eval:
	@bash .ci/guard_eval
