#!/usr/bin/env bash
# Install (with the test extra) and run the default test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest -q "$@"
