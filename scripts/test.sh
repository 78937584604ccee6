#!/usr/bin/env bash
# README command B: set everything up, then lint, type-check and run the whole test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k artefact).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
