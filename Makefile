# The two commands of the README; both set up what is missing first (scripts/bootstrap.sh).
.PHONY: run test check setup lint format clean-var

run:  ## set up, then run the platform in the foreground (Ctrl-C stops it)
	./scripts/bootstrap.sh run

test:  ## set up, then run the whole test suite
	./scripts/bootstrap.sh test

check:  ## the edit loop: lint and the unit tier (no JVM, a few minutes)
	./scripts/bootstrap.sh check

setup:  ## set up only: .venv from uv.lock, JVM jars under var/jars, the dbt manifest
	./scripts/bootstrap.sh

lint:  ## ruff lint and format check
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	.venv/bin/ruff check --fix . && .venv/bin/ruff format .

clean-var:  ## stop every service and delete everything written at run time (keeps resolved jars)
	-.venv/bin/smartcity down
	.venv/bin/smartcity clean --yes
