"""Size and cost of each backbone at its default input, for `vfx models` and scripts/bench_models.py.

FLOPs come from `torch.utils.flop_counter.FlopCounterMode` on the meta device (shapes only: no memory,
no arithmetic). It counts a multiply-add as 2 FLOPs; the papers (TSM Table 1, MSNet Table 1, I3D)
quote multiply-adds and call them FLOPs, so `gflops` here is the counter's total divided by 2 (GMACs).
The counter sees convolutions, matmuls and our correlation ops (vfx/models/correlation.py registers
their formulas); elementwise work (BN, ReLU, softmax, the shift) is not counted, as in the papers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from vfx.models.registry import get_builder
from vfx.models.spec import InputSpec


# Published numbers to compare with: (GFLOPs as multiply-adds, params in millions, source). A source
# starting with "~" is a rounded figure: shown, but no percentage is computed against it.
PAPER: dict[str, tuple[float | None, float | None, str]] = {
    "tsm_r50": (33.0, 24.3, "TSM, Lin et al. 2019, Table 1: 8 frames 224^2"),
    "msnet_r50": (34.0, 24.6, "MSNet, Kwon et al. 2020, Table 1: 8 frames"),
    "i3d_rgb": (None, 12.0, "~I3D, Carreira & Zisserman 2017, Table 1: 12M per stream"),
    "i3d_flow": (None, 12.0, "~I3D, Carreira & Zisserman 2017, Table 1: 12M per stream"),
}


@dataclass(frozen=True)
class ModelSummary:
    name: str
    params: int
    gflops: float  # multiply-adds x 1e-9 at the default input, one clip
    feature_dim: int
    spec: InputSpec


def count_gflops(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds (x 1e-9) of one `model(x)` as counted by FlopCounterMode."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2e9


def summarise(name: str, **kw) -> ModelSummary:
    """Parameters and GFLOPs of `name` at its default input, computed on the meta device."""
    with torch.device("meta"):
        model = get_builder(name)(**kw).eval()
        spec = model.input_spec
        x = torch.empty(1, spec.channels, spec.num_frames, spec.size, spec.size)
        gflops = count_gflops(model, x)
    params = sum(p.numel() for p in model.parameters())
    return ModelSummary(name, params, gflops, spec.feature_dim, spec)
