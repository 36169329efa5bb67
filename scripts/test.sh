#!/usr/bin/env bash
# The whole test suite on a fresh machine: its own virtualenv, torch 2.13.0 first, then kosim[test], then ruff (lint and format check), then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/ruff check kosim tests scripts benchmarks
.venv/bin/ruff format --check kosim tests scripts benchmarks
HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q "$@"
