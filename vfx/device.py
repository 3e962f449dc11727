"""What `--device auto|cpu|cuda` means for torch: one rule for every stage and for training."""

from __future__ import annotations

from vfx.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> str:
    """"auto": CUDA when torch sees a GPU, else the CPU; "cuda" without one is a usage error."""
    import torch

    if name not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device cuda: torch {torch.__version__} sees no CUDA GPU here; use --device cpu")
    return name
