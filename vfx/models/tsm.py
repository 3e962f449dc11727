"""TSM: ResNet with residual temporal shift (Lin, Gan & Han, ICCV 2019).

Faithful to mit-han-lab/temporal-shift-module (ops/temporal_shift.py, ops/models.py) with
`--shift_div 8 --shift_place blockres`, no temporal pooling, no non-local blocks:
- the shift sits on the residual branch of every ResNet block, before its first conv (for
  ResNet-101-sized layer3 the reference shifts every second block; `n_round`, kept here);
- channels `[0, C/8)` take frame t+1, `[C/8, 2C/8)` take frame t-1, the rest stay; frames off the
  ends are zeros (`TemporalShift.shift`, in-place=False);
- frames run as batch x T through a 2D torchvision ResNet; per-frame logits are averaged over T
  (`ConsensusModule('avg')`). The classifier is `new_fc` after dropout (0.5 in their scripts).
- Input: ImageNet mean/std on [0, 1] RGB, 8 segments (TSN sampling) at 224x224.

Their checkpoints are `{"epoch", "arch", "state_dict", "optimizer", "best_prec1"}` with DataParallel
keys `module.base_model.layer1.0.conv1.net.weight`, ..., `module.new_fc.weight`; `tsm_key_map` renames
them to ours (`backbone.layer1.0.conv1.weight`, `fc.weight`).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from vfx.models.base import VideoBackbone
from vfx.models.registry import ModelCard, register
from vfx.models.resnet import ResNet2d
from vfx.models.spec import InputSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def temporal_shift(x_ntchw: torch.Tensor, fold_div: int = 8) -> torch.Tensor:
    """Shift 1/fold_div of the channels back (from t+1) and 1/fold_div forward (from t-1), zero-filled."""
    c = x_ntchw.shape[2]
    fold = c // fold_div
    out = torch.zeros_like(x_ntchw)
    out[:, :-1, :fold] = x_ntchw[:, 1:, :fold]
    out[:, 1:, fold : 2 * fold] = x_ntchw[:, :-1, fold : 2 * fold]
    out[:, :, 2 * fold :] = x_ntchw[:, :, 2 * fold :]
    return out


class TemporalShift(nn.Module):
    """Parameter-free shift on `[N*T, C, H, W]` tensors whose batch packs T segments per clip."""

    def __init__(self, num_segments: int, fold_div: int = 8):
        super().__init__()
        self.num_segments = num_segments
        self.fold_div = fold_div

    def forward(self, x_nchw: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x_nchw.shape
        x = x_nchw.view(nt // self.num_segments, self.num_segments, c, h, w)
        return temporal_shift(x, self.fold_div).view(nt, c, h, w)


def install_temporal_shift(net: ResNet2d, num_segments: int, fold_div: int = 8) -> None:
    """Put a shift on the residual branch of the blocks, as `make_temporal_shift(place='blockres')`."""
    # The reference shifts every second block when layer3 has >= 23 blocks (ResNet-101/152).
    n_round = 2 if len(net.layer3) >= 23 else 1
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for i, block in enumerate(layer):
            if i % n_round == 0:
                block.shift = TemporalShift(num_segments, fold_div)
    net.num_segments = num_segments


def set_num_segments(net: nn.Module, num_segments: int) -> None:
    for m in net.modules():
        if isinstance(m, TemporalShift):
            m.num_segments = num_segments


class SegmentResNet(VideoBackbone):
    """Shared driver of TSM and MSNet: `[B, C, T, H, W]` -> frames as batch -> ResNet -> `[B, D, T, h, w]`."""

    backbone: ResNet2d

    def _frames_as_batch(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        self.check_input(x_bcthw)
        b, c, t, h, w = x_bcthw.shape
        # The shift modules need T; setting it per call lets one model take any number of segments.
        set_num_segments(self, t)
        return x_bcthw.transpose(1, 2).reshape(b * t, c, h, w)

    @staticmethod
    def _batch_as_frames(maps_nchw: torch.Tensor, b: int) -> torch.Tensor:
        nt, d, h, w = maps_nchw.shape
        return maps_nchw.view(b, nt // b, d, h, w).transpose(1, 2)


class TSMResNet(SegmentResNet):
    def __init__(self, depth: int = 50, num_classes: int = 400, num_segments: int = 8, size: int = 224,
                 width: int = 64, dropout: float = 0.5, fold_div: int = 8):
        super().__init__()
        self.backbone = ResNet2d(depth, num_classes=0, width=width)
        install_temporal_shift(self.backbone, num_segments, fold_div)
        self.feature_dim = self.backbone.out_channels
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.feature_dim, num_classes)
        self.input_spec = InputSpec(
            num_frames=num_segments, size=size, channels=3, sampling="segments", value_range=(0.0, 1.0),
            mean=IMAGENET_MEAN, std=IMAGENET_STD, feature_dim=self.feature_dim,
        )  # fmt: skip

    def forward_feature_maps(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """layer4 maps of every segment: `[B, D, T, H/32, W/32]`."""
        return self._batch_as_frames(self.backbone.forward_maps(self._frames_as_batch(x_bcthw)), x_bcthw.shape[0])

    @staticmethod
    def key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return tsm_key_map(state)


def tsm_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """mit-han-lab TSM keys (after `module.` is stripped) -> ours. Our own keys pass through."""
    out = {}
    for key, value in state.items():
        new = key
        if new.startswith("base_model."):
            new = "backbone." + new[len("base_model."):]
            new = re.sub(r"\.conv1\.net\.", ".conv1.", new)  # TemporalShift wraps conv1 as `.net`
            if new.startswith("backbone.fc."):  # dropout=0: the classifier stays in the base model
                new = "fc." + new[len("backbone.fc."):]
        elif new.startswith("new_fc."):
            new = "fc." + new[len("new_fc."):]
        out[new] = value
    return out


@register("tsm_r50", card=ModelCard(
    weights="mit-han-lab/temporal-shift-module README, Kinetics-400 model zoo "
    "(TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth)",
    weights_format="a checkpoint of its main.py: {'epoch', 'arch', 'state_dict': {'module.base_model.conv1.weight', ..., "
    "'module.new_fc.weight'}, ...}",
    paper_gflops=33.0, paper_params_m=24.3, paper_source="TSM, Lin et al. 2019, Table 1: 8 frames 224^2",
))  # fmt: skip
def tsm_r50(num_classes: int = 400, **kw) -> TSMResNet:
    return TSMResNet(50, num_classes=num_classes, **kw)
