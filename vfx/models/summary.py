"""Size and cost of each backbone at its default input, for `vfx models` and scripts/bench_models.py.

FLOPs come from `torch.utils.flop_counter.FlopCounterMode` on the meta device (shapes only: no memory,
no arithmetic). It counts a multiply-add as 2 FLOPs; the papers (TSM Table 1, MSNet Table 1, I3D)
quote multiply-adds and call them FLOPs (so do torchvision's `_ops` and mmaction2's model zoo), so
`gflops` here is the counter's total divided by 2 (GMACs).
The counter sees convolutions, matmuls and our correlation ops (vfx/models/correlation.py registers
their formulas); elementwise work (BN, ReLU, softmax, the shift) is not counted, as in the papers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from vfx.models.registry import ModelCard, build_on_meta, get_card
from vfx.models.spec import InputSpec


@dataclass(frozen=True)
class ModelSummary:
    name: str
    params: int
    gflops: float  # multiply-adds x 1e-9 at the default input, one clip
    feature_dim: int
    spec: InputSpec
    card: ModelCard | None = None  # weights location and format, the paper's figures

    def paper_delta(self) -> tuple[float | None, float | None]:
        """Relative difference (ours / paper - 1) of GFLOPs and params, None where there is no exact figure."""
        c = self.card
        if c is None or c.paper_source.startswith("~"):
            return None, None
        g = None if c.paper_gflops is None else self.gflops / c.paper_gflops - 1
        p = None if c.paper_params_m is None else self.params / 1e6 / c.paper_params_m - 1
        return g, p


def count_gflops(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds (x 1e-9) of one `model(x)` as counted by FlopCounterMode."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2e9


def summarise(name: str, **kw) -> ModelSummary:
    """Parameters and GFLOPs of `name` at its default input, computed on the meta device."""
    model = build_on_meta(name, **kw)
    spec = model.input_spec
    with torch.device("meta"):
        x = torch.empty(1, spec.channels, spec.num_frames, spec.size, spec.size)
        gflops = count_gflops(model, x)
    params = sum(p.numel() for p in model.parameters())
    return ModelSummary(name, params, gflops, spec.feature_dim, spec, get_card(name))
