# The two commands of the README, and the checks every change is held to.
.PHONY: setup up test unit lint bench

PYTHON := .venv/bin/python

setup:
	bash tools/setup.sh

up: setup
	.venv/bin/virtstack up dev --yes

test: setup
	.venv/bin/pytest

unit:
	.venv/bin/pytest tests/unit

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

bench: setup
	$(PYTHON) -m bench
