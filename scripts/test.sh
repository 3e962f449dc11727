#!/usr/bin/env bash
# Install (with the test extra) and run the default test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# A few tests encode variable-frame-rate files with the ffmpeg program (Debian package; root installs it).
if ! command -v ffmpeg >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg) >/dev/null
fi
exec .venv/bin/python -m pytest -q "$@"
