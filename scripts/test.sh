#!/usr/bin/env bash
# Set up (with the test tools) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# --mpnet: the base-size encoder's resolution test runs instead of being skipped; it adds
# ~15 s and 0.85 GB of disk (404 MB download) to a ~5-minute run
bash scripts/setup.sh --test --mpnet
# lint and format are part of the suite (ruff comes with the test extra)
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -q -ra "$@"
