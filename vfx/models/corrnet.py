"""CorrNet (Wang, Tran, Torresani & Feiszli, CVPR 2020) and its plain R(2+1)D backbone.

No official code exists. The paper fixes: an R(2+1)D bottleneck ResNet; correlation blocks inserted
after res2, res3 and res4 (CorrNet-101: one more in the middle of res4); a learnable correlation with
one weight per channel and offset over a K x K window, K=7 and dilation 2; groupwise correlation
(G=32); the block sums its output onto its input ("correlation-sum"). Everything it leaves open
follows the one public re-implementation, tefantasy/CorrNet (PySlowFast based; corr_net/models/
correlation_net/{corr_net.py,corr.py,conv_2dplus1d.py}), whose checkpoints load here as they are
(key names are the same, so the mapping is the identity; PySlowFast's `model_state` wrapper is
stripped by the shared loader). The choices taken from it:

1. Correlation weights are per channel, per frame and per offset: `filter_weight [C/4, T_stage, K, K]`,
   so a model is built for one clip length (default 16, the re-implementation's setting; the paper
   evaluates 32-frame clips) and refuses other lengths.
2. Frame t-1 (undisplaced) is correlated with frame t (displaced); the first frame with itself.
3. Channels inside a group are averaged (not summed); responses outside the frame are zero.
4. Output channel order is offset-major: `k * G + g` with k = iy*K + ix (row-major window).
5. Block: 1x1x1 conv C -> C/4 + BN + ReLU, correlation (-> K*K*G = 1568 channels), 1x1x1 conv -> C
   + BN, add the input, ReLU.
6. Stem: 1x7x7 conv, 32 channels, stride (1,2,2), with bias, BN, ReLU, no max-pool; each stage's first
   block strides (res2: 1x2x2, res3: 1x2x2, res4/res5: 2x2x2) and projects the shortcut.
7. Bottleneck: 1x1x1 -> (2+1)D 3x3x3 -> 1x1x1 with width x4 expansion; the (2+1)D conv has
   M = floor(27 N_in N_out / (9 N_in + 3 N_out)) middle channels (Tran et al. 2018, Sec. 3.5), BN+ReLU
   between its spatial and temporal parts and bias on both.
8. Blocks per stage: 26: [2,2,2,2]; 50: [3,4,6,3]; 101: [3,4,23,3] bottlenecks; correlation blocks at
   positions 2/2/2 (26), 3/4/6 (50), and 3/4/(12,24) (101) of res2/res3/res4 counting them.
9. Head: global average pool, Linear 2048 -> classes, no dropout. Input: [0, 1] RGB, mean 0.45 and
   std 0.225 per channel (PySlowFast defaults), dense clips at 224x224.

`r2plus1d_26` is the same network without correlation blocks.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vfx.models.base import VideoBackbone
from vfx.models.correlation import weighted_correlation
from vfx.models.registry import ModelCard, register
from vfx.models.spec import InputSpec

KERNEL = 7  # correlation window (paper Sec. 4: K=7)
DILATION = 2  # paper: dilation 2, so the window spans 13x13
GROUPS = 32  # groupwise correlation, G=32 (re-implementation corr_net.py)
EXPANSION = 4
MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)

Triple = tuple[int, int, int]


class Conv2Plus1D(nn.Module):
    """kxk spatial conv -> BN -> ReLU -> k temporal conv; stride split the same way."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: Triple, padding: int):
        super().__init__()
        mid = math.floor(kernel**3 * c_in * c_out / (kernel**2 * c_in + kernel * c_out))
        self.spatial_conv = nn.Conv3d(c_in, mid, (1, kernel, kernel), (1, stride[1], stride[2]), (0, padding, padding))
        self.bn = nn.BatchNorm3d(mid)
        self.relu = nn.ReLU(inplace=True)
        self.temporal_conv = nn.Conv3d(mid, c_out, (kernel, 1, 1), (stride[0], 1, 1), (padding, 0, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal_conv(self.relu(self.bn(self.spatial_conv(x))))


class Bottleneck(nn.Module):
    def __init__(self, c_in: int, planes: int, stride: Triple = (1, 1, 1)):
        super().__init__()
        self.downsample = max(stride) > 1
        self.conv1 = nn.Sequential(nn.Conv3d(c_in, planes, 1, bias=False), nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(Conv2Plus1D(planes, planes, 3, stride, 1), nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv3 = nn.Sequential(nn.Conv3d(planes, planes * EXPANSION, 1, bias=False), nn.BatchNorm3d(planes * EXPANSION))
        self.relu = nn.ReLU(inplace=True)
        if self.downsample:
            self.downsample_conv = nn.Sequential(
                nn.Conv3d(c_in, planes * EXPANSION, 1, stride, bias=False), nn.BatchNorm3d(planes * EXPANSION)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.downsample_conv(x) if self.downsample else x
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + residual)


class WeightedCorrelation(nn.Module):
    """Learnable groupwise correlation of each frame with the previous one: `[B, C, T, H, W] -> [B, K*K*G, T, H, W]`."""

    def __init__(self, channels: int, num_frames: int, kernel: int = KERNEL, dilation: int = DILATION, groups: int = GROUPS):
        super().__init__()
        self.filter_weight = nn.Parameter(torch.empty(channels, num_frames, kernel, kernel))
        nn.init.kaiming_normal_(self.filter_weight, mode="fan_out", nonlinearity="relu")
        self.dilation = dilation
        self.groups = groups

    def forward(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        previous = torch.cat([x_bcthw[:, :, :1], x_bcthw[:, :, :-1]], dim=2)  # frame 0 pairs with itself
        return weighted_correlation(previous, x_bcthw, self.filter_weight, self.groups, self.dilation)


class CorrelationBlock(nn.Module):
    """Correlation-sum block: encode C -> C/4, correlate, decode -> C, add, ReLU."""

    def __init__(self, channels: int, num_frames: int, kernel: int = KERNEL, dilation: int = DILATION, groups: int = GROUPS):
        super().__init__()
        reduced = channels // 4
        self.encode_conv = nn.Sequential(nn.Conv3d(channels, reduced, 1, bias=False), nn.BatchNorm3d(reduced), nn.ReLU(inplace=True))
        self.correlation = WeightedCorrelation(reduced, num_frames, kernel, dilation, groups)
        self.decode_conv = nn.Sequential(
            nn.Conv3d(kernel * kernel * groups, channels, 1, bias=False), nn.BatchNorm3d(channels)
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.decode_conv(self.correlation(self.encode_conv(x))))


# depth -> (bottlenecks per stage, correlation block positions per stage counting them)
CORRNET_LAYOUTS: dict[int, tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]] = {
    26: ((2, 2, 2, 2), ((2,), (2,), (2,), ())),
    50: ((3, 4, 6, 3), ((3,), (4,), (6,), ())),
    101: ((3, 4, 23, 3), ((3,), (4,), (12, 24), ())),
}


class CorrNet(VideoBackbone):
    """R(2+1)D bottleneck ResNet with correlation-sum blocks (`correlation=False`: plain R(2+1)D)."""

    feature_dim = 512 * EXPANSION

    def __init__(self, depth: int = 26, num_classes: int = 400, num_frames: int = 16, size: int = 224,
                 correlation: bool = True, dropout: float = 0.0):
        super().__init__()
        blocks, corr_at = CORRNET_LAYOUTS[depth]
        if not correlation:
            corr_at = ((), (), (), ())
        if correlation:
            if num_frames % 4:
                raise ValueError(f"CorrNet needs a clip length divisible by 4, got {num_frames}")
            self.fixed_num_frames = num_frames
        self.input_spec = InputSpec(
            num_frames=num_frames, size=size, channels=3, sampling="dense", value_range=(0.0, 1.0),
            mean=MEAN, std=STD, feature_dim=self.feature_dim,
        )  # fmt: skip
        self.conv1 = nn.Sequential(nn.Conv3d(3, 32, (1, 7, 7), (1, 2, 2), (0, 3, 3)), nn.BatchNorm3d(32), nn.ReLU(inplace=True))
        t = num_frames
        c_in = 32
        strides = ((1, 2, 2), (1, 2, 2), (2, 2, 2), (2, 2, 2))
        for i, (planes, n, locs, stride) in enumerate(zip((64, 128, 256, 512), blocks, corr_at, strides)):
            t //= stride[0]
            stage: list[nn.Module] = [Bottleneck(c_in, planes, stride)]
            c_in = planes * EXPANSION
            for _ in range(1, n):
                if len(stage) in locs:
                    stage.append(CorrelationBlock(c_in, t))
                stage.append(Bottleneck(c_in, planes))
            if len(stage) in locs:
                stage.append(CorrelationBlock(c_in, t))
            setattr(self, f"res{i + 2}", nn.Sequential(*stage))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.feature_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # The re-implementation's initialisation (corr_net.py `_initialize_weights`).
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_feature_maps(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """res5 maps `[B, 2048, T/4, H/32, W/32]`."""
        self.check_input(x_bcthw)
        x = self.conv1(x_bcthw)
        for stage in (self.res2, self.res3, self.res4, self.res5):
            x = stage(x)
        return x

    @staticmethod
    def key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return corrnet_key_map(state)


def corrnet_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """tefantasy/CorrNet keys -> ours: the module tree is the same, so names pass through unchanged."""
    return dict(state)


_CORR_CARD = ModelCard(
    weights="none: the authors released no code or weights; checkpoints trained with the tefantasy/CorrNet "
    "re-implementation load as they are",
    weights_format="a PySlowFast checkpoint {'epoch', 'model_state': {'conv1.0.weight', 'res2.0.conv1.0.weight', ..., 'fc.weight'}, 'optimizer_state', 'cfg'}",
)


@register("corrnet_26", card=_CORR_CARD)
def corrnet_26(num_classes: int = 400, **kw) -> CorrNet:
    return CorrNet(26, num_classes=num_classes, **kw)


@register("corrnet_50", card=_CORR_CARD)
def corrnet_50(num_classes: int = 400, **kw) -> CorrNet:
    return CorrNet(50, num_classes=num_classes, **kw)


@register("corrnet_101", card=_CORR_CARD)
def corrnet_101(num_classes: int = 400, **kw) -> CorrNet:
    return CorrNet(101, num_classes=num_classes, **kw)


@register("r2plus1d_26", card=_CORR_CARD)
def r2plus1d_26(num_classes: int = 400, **kw) -> CorrNet:
    return CorrNet(26, num_classes=num_classes, correlation=False, **kw)
