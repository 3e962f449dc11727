"""What `--device auto|cpu|cuda` means for torch: one rule for every stage and for training."""

from __future__ import annotations

import glob
import os
import sys

from vfx.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")


def _no_gpu_device_nodes() -> bool:
    """True where the kernel shows no GPU to anyone: no NVIDIA device files, no ROCm (/dev/kfd), no WSL GPU
    (/dev/dxg). torch cannot see a CUDA device then, and asking it costs its import (~2 s on a small CPU)."""
    return sys.platform == "linux" and not glob.glob("/dev/nvidia[0-9]*") and not any(
        os.path.exists(node) for node in ("/dev/kfd", "/dev/dxg"))


def resolve_device(name: str) -> str:
    """"auto": CUDA when torch sees a GPU, else the CPU; "cuda" without one is a usage error."""
    if name not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cpu" or (name == "auto" and _no_gpu_device_nodes()):
        return "cpu"  # without importing torch: a CPU-only driver (Ray, opencv flow) never needs it
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device cuda: torch {torch.__version__} sees no CUDA GPU here; use --device cpu")
    return name
