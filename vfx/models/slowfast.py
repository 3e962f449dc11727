"""SlowFast R50 (Feichtenhofer, Fan, Malik & He, ICCV 2019), pytorchvideo `slowfast_r50` ("8x8", alpha 4).

Faithful to pytorchvideo/models/hub/slowfast.py `slowfast_r50` (create_slowfast in models/slowfast.py),
whose hub file `SLOWFAST_8x8_R50.pyth` is `{"model_state": ...}` with keys
`blocks.0.multipathway_blocks.{0,1}.conv.weight` (slow, fast stems), `blocks.K.multipathway_fusion.
conv_fast_to_slow.weight`, `blocks.K.multipathway_blocks.P.res_blocks.i.branch2.conv_a.weight`,
`blocks.6.proj.weight`; `slowfast_key_map` renames `blocks.K.multipathway_blocks.0/1` and
`multipathway_fusion` to `stages.K.slow/fast/fuse`.

Layout (create_slowfast defaults, model_depth=50, slowfast_fusion_conv_kernel_size=(7, 1, 1)):
- input: one clip of T frames; the fast pathway sees all T, the slow pathway T/4 of them picked as
  PySlowFast's PackPathway does (`torch.linspace(0, T - 1, T // 4).long()`), so T must divide by 4;
- stems: slow 1x7x7 conv to 64 channels, fast 5x7x7 to 8 (beta = 1/8), each BN, ReLU, 1x3x3 max-pool;
- res2..res5 [3, 4, 6, 3] bottlenecks per pathway, fast widths / 8; conv_a temporal kernels slow
  1, 1, 3, 3 and fast 3, 3, 3, 3 per stage; spatial stride 2 in res3..res5; no temporal stride;
- fusion after the stems and after res2, res3, res4 (not after res5): fast -> 7x1x1 conv, temporal stride 4
  (alpha), 2x the fast width, BN, ReLU, concatenated to the slow channels;
- head: each pathway average-pooled over its whole clip (8x7x7 slow, 32x7x7 fast at 32x224), concatenated
  (2048 + 256 = 2304), dropout 0.5, Linear 2304 -> 400.
Input: 32 frames every 2nd frame (8x8 means 8 slow frames at stride 8), [0, 1] RGB, mean 0.45, std 0.225
(pytorchvideo hub tutorial), 224 crops.
"""

from __future__ import annotations

import torch
from torch import nn

from vfx.errors import UsageError
from vfx.models.base import VideoBackbone
from vfx.models.registry import ModelCard, register
from vfx.models.resnet3d import STAGE_DEPTHS, ResStage, Stem, head_pool, init_weights, kinetics_spec, rename_keys

ALPHA = 4  # frame-rate ratio fast / slow
BETA_INV = 8  # channel ratio slow / fast
FUSION_RATIO = 2  # fused channels = 2 x fast width (slowfast_conv_channel_fusion_ratio)
FUSION_KERNEL = 7  # slowfast_r50: slowfast_fusion_conv_kernel_size (7, 1, 1)
SLOW_KERNELS_A = (1, 1, 3, 3)  # create_slowfast stage_conv_a_kernel_sizes, slow pathway
FAST_KERNELS_A = (3, 3, 3, 3)

_PYTORCHVIDEO_RULES = (
    (r"^blocks\.([0-4])\.multipathway_blocks\.0\.", r"stages.\1.slow."),
    (r"^blocks\.([0-4])\.multipathway_blocks\.1\.", r"stages.\1.fast."),
    (r"^blocks\.([0-3])\.multipathway_fusion\.", r"stages.\1.fuse."),
    (r"^blocks\.6\.proj\.", "fc."),
)


class FuseFastToSlow(nn.Module):
    """Lateral connection: fast maps -> time-strided conv -> BN -> ReLU, appended to the slow channels."""

    def __init__(self, c_fast: int):
        super().__init__()
        self.conv_fast_to_slow = nn.Conv3d(
            c_fast, c_fast * FUSION_RATIO, (FUSION_KERNEL, 1, 1), (ALPHA, 1, 1), (FUSION_KERNEL // 2, 0, 0), bias=False
        )
        self.norm = nn.BatchNorm3d(c_fast * FUSION_RATIO)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
        return torch.cat([slow, self.activation(self.norm(self.conv_fast_to_slow(fast)))], dim=1)


class PathwayStage(nn.Module):
    """One stage of both pathways, then the optional fusion."""

    def __init__(self, slow: nn.Module, fast: nn.Module, fuse: FuseFastToSlow | None):
        super().__init__()
        self.slow = slow
        self.fast = fast
        self.fuse = fuse

    def forward(self, slow: torch.Tensor, fast: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        slow, fast = self.slow(slow), self.fast(fast)
        if self.fuse is not None:
            slow = self.fuse(slow, fast)
        return slow, fast


class SlowFastR50(VideoBackbone):
    def __init__(self, num_classes: int = 400, num_frames: int = 32, frame_step: int = 2, size: int = 224, dropout: float = 0.5):
        super().__init__()
        slow_dim, fast_dim = 2048, 2048 // BETA_INV
        self.input_spec = kinetics_spec(num_frames, frame_step, size, slow_dim + fast_dim)
        self.feature_dim = slow_dim + fast_dim
        stages = [PathwayStage(Stem(3, 64, (1, 7, 7)), Stem(3, 64 // BETA_INV, (5, 7, 7)), FuseFastToSlow(64 // BETA_INV))]
        c_slow_in, c_fast_in = 64, 64 // BETA_INV
        for i, n in enumerate(STAGE_DEPTHS[50]):
            c_inner, c_out = 64 * 2**i, 256 * 2**i
            stride = (1, 1, 1) if i == 0 else (1, 2, 2)
            fused_in = c_slow_in + c_fast_in * FUSION_RATIO
            slow = ResStage(n, fused_in, c_inner, c_out, ((SLOW_KERNELS_A[i], 1, 1),), stride_b=stride)
            fast = ResStage(n, c_fast_in, c_inner // BETA_INV, c_out // BETA_INV, ((FAST_KERNELS_A[i], 1, 1),), stride_b=stride)
            fuse = FuseFastToSlow(c_out // BETA_INV) if i < 3 else None
            stages.append(PathwayStage(slow, fast, fuse))
            c_slow_in, c_fast_in = c_out, c_out // BETA_INV
        self.stages = nn.ModuleList(stages)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.feature_dim, num_classes)
        init_weights(self)

    def check_input(self, x_bcthw: torch.Tensor) -> None:
        super().check_input(x_bcthw)
        t = x_bcthw.shape[2]
        if t % ALPHA:
            raise UsageError(f"SlowFastR50 takes clips whose length divides by {ALPHA} (slow = every {ALPHA}th frame), got T={t}")

    def forward_pathways(self, x_bcthw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """res5 maps of the slow `[B, 2048, T/4, h, w]` and fast `[B, 256, T, h, w]` pathways."""
        self.check_input(x_bcthw)
        t = x_bcthw.shape[2]
        # PySlowFast PackPathway (and the pytorchvideo hub tutorial): slow frames by linspace, truncated.
        index = torch.linspace(0, t - 1, t // ALPHA).long().to(x_bcthw.device)
        slow, fast = torch.index_select(x_bcthw, 2, index), x_bcthw
        for stage in self.stages:
            slow, fast = stage(slow, fast)
        return slow, fast

    def forward_feature_maps(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """`[B, 2304, T/4, h, w]`: slow maps and fast maps averaged over each group of 4 frames."""
        slow, fast = self.forward_pathways(x_bcthw)
        b, c, t, h, w = fast.shape
        fast = fast.view(b, c, t // ALPHA, ALPHA, h, w).mean(dim=3)
        return torch.cat([slow, fast], dim=1)

    def forward_features(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        # Each pathway pooled over its own whole clip, then concatenated (PoolConcatPathway).
        slow, fast = self.forward_pathways(x_bcthw)
        return torch.cat([head_pool(slow), head_pool(fast)], dim=1)

    @staticmethod
    def key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return slowfast_key_map(state)


def slowfast_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pytorchvideo `blocks.K.multipathway_*` -> `stages.K.slow/fast/fuse`, `blocks.6.proj` -> `fc`."""
    return rename_keys(state, _PYTORCHVIDEO_RULES)


@register("slowfast_r50", card=ModelCard(
    weights="pytorchvideo MODEL_ZOO.md (Kinetics-400): https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/SLOWFAST_8x8_R50.pyth",
    weights_format="a pytorchvideo hub .pyth file {'model_state': {'blocks.0.multipathway_blocks.0.conv.weight', ...}}",
    paper_gflops=65.71, paper_params_m=34.57,
    paper_source="pytorchvideo MODEL_ZOO.md, SlowFast R50 8x8: per view of 256^2 (PySlowFast tests 3 crops of 256)",
))  # fmt: skip
def slowfast_r50(num_classes: int = 400, **kw) -> SlowFastR50:
    return SlowFastR50(num_classes=num_classes, **kw)
