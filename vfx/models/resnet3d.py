"""3D ResNet building blocks shared by i3d_r50, i3d_nl_r50, csn_r101 and slowfast_r50.

Module and parameter names follow pytorchvideo (pytorchvideo/models/resnet.py, stem.py), whose hub
checkpoints use them: a stem (`conv`, `norm`, max-`pool`), stages of residual blocks
(`res_blocks.i.branch1_conv` / `branch1_norm` for a projected shortcut, `branch2.conv_a/norm_a/conv_b/
norm_b/conv_c/norm_c` for the bottleneck), each block ending in ReLU(shortcut + branch2). PySlowFast
(slowfast/models/resnet_helper.py) builds the same network under other names (`pathway0_res0.branch2.a`,
`a_bn`, ...); its key mapping sits next to the model that loads it (i3d_nl.py).

Numbers shared by every model here (pytorchvideo create_bottleneck_block / create_res_block, PySlowFast
ResBlock): BatchNorm eps 1e-5, momentum 0.1; convs without bias; padding `k // 2` per axis; the spatial
(and, in CSN, temporal) stride sits on conv_b, the 3x3 conv; the shortcut is a strided 1x1x1 conv + BN
whenever the width or the resolution changes.

Head (pytorchvideo create_res_basic_head / PySlowFast ResNetBasicHead): an average pool whose temporal
window is the whole clip at the length the model was built for and whose spatial window is the training
crop / 32 = 7, stride 1, then dropout and a linear projection; outputs of several windows (crops larger
than 224) are averaged. `head_pool` does that at any clip length: the temporal window always spans the
whole clip, as the reference built for that length does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vfx.models.base import VideoBackbone
from vfx.models.spec import InputSpec

Triple = tuple[int, int, int]

HEAD_SPATIAL_WINDOW = 7  # 224 training crop / 32 (PySlowFast video_model_builder.py: TRAIN_CROP_SIZE // 32)


def _pad(kernel: Sequence[int]) -> tuple[int, ...]:
    return tuple(k // 2 for k in kernel)


class Stem(nn.Module):
    """Conv (kernel `kernel`, stride 1x2x2) -> BN -> ReLU -> 1x3x3 max-pool with stride 1x2x2."""

    def __init__(self, c_in: int, c_out: int, kernel: Triple, pool: bool = True):
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, kernel, (1, 2, 2), _pad(kernel), bias=False)
        self.norm = nn.BatchNorm3d(c_out)
        self.activation = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)) if pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.norm(self.conv(x)))
        return x if self.pool is None else self.pool(x)


class Bottleneck(nn.Module):
    """conv_a (kt x 1 x 1) -> BN -> ReLU -> conv_b (kernel_b, strided, grouped) -> BN -> ReLU -> conv_c 1x1x1 -> BN."""

    def __init__(self, c_in: int, c_inner: int, c_out: int, kernel_a: Triple, kernel_b: Triple, stride_b: Triple, groups: int = 1):
        super().__init__()
        self.conv_a = nn.Conv3d(c_in, c_inner, kernel_a, 1, _pad(kernel_a), bias=False)
        self.norm_a = nn.BatchNorm3d(c_inner)
        self.act_a = nn.ReLU(inplace=True)
        self.conv_b = nn.Conv3d(c_inner, c_inner, kernel_b, stride_b, _pad(kernel_b), groups=groups, bias=False)
        self.norm_b = nn.BatchNorm3d(c_inner)
        self.act_b = nn.ReLU(inplace=True)
        self.conv_c = nn.Conv3d(c_inner, c_out, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_a(self.norm_a(self.conv_a(x)))
        x = self.act_b(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_inner: int, c_out: int, kernel_a: Triple, kernel_b: Triple, stride_b: Triple, groups: int = 1):
        super().__init__()
        if c_in != c_out or stride_b != (1, 1, 1):
            self.branch1_conv = nn.Conv3d(c_in, c_out, 1, stride_b, bias=False)
            self.branch1_norm = nn.BatchNorm3d(c_out)
        else:
            self.branch1_conv = self.branch1_norm = None
        self.branch2 = Bottleneck(c_in, c_inner, c_out, kernel_a, kernel_b, stride_b, groups)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.branch1_conv is None else self.branch1_norm(self.branch1_conv(x))
        return self.activation(shortcut + self.branch2(x))


class NonLocal(nn.Module):
    """Embedded-Gaussian non-local block (Wang et al. 2018), as PySlowFast nonlocal_helper.py "softmax".

    theta, phi, g: 1x1x1 convs with bias to C/2 channels; phi and g see the input max-pooled 1x2x2;
    affinity softmax(theta^T phi / sqrt(C/2)) over all pooled positions; 1x1x1 conv back to C, BN, added to
    the input.
    """

    def __init__(self, channels: int, pool: Triple = (1, 2, 2)):
        super().__init__()
        inner = channels // 2
        self.conv_theta = nn.Conv3d(channels, inner, 1)
        self.conv_phi = nn.Conv3d(channels, inner, 1)
        self.conv_g = nn.Conv3d(channels, inner, 1)
        self.conv_out = nn.Conv3d(inner, channels, 1)
        self.bn = nn.BatchNorm3d(channels)
        self.pool = nn.MaxPool3d(pool, pool) if any(p > 1 for p in pool) else None
        self.scale = inner**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, h, w = x.shape
        pooled = x if self.pool is None else self.pool(x)
        theta = self.conv_theta(x).flatten(2)  # [N, C', THW]
        phi = self.conv_phi(pooled).flatten(2)  # [N, C', T'H'W']
        g = self.conv_g(pooled).flatten(2)
        affinity = torch.softmax(theta.transpose(1, 2) @ phi * self.scale, dim=2)  # [N, THW, T'H'W']
        y = (g @ affinity.transpose(1, 2)).view(n, -1, t, h, w)
        return x + self.bn(self.conv_out(y))


class ResStage(nn.Module):
    """`depth` residual blocks; the first one strides. `kernels_a` cycle over the blocks (pytorchvideo
    create_res_stage: [(3,1,1), (1,1,1)] alternates). `nonlocal_after`: indices of blocks followed by a
    non-local block (PySlowFast NONLOCAL.LOCATION)."""

    def __init__(
        self,
        depth: int,
        c_in: int,
        c_inner: int,
        c_out: int,
        kernels_a: Sequence[Triple],
        kernel_b: Triple = (1, 3, 3),
        stride_b: Triple = (1, 1, 1),
        depthwise: bool = False,
        nonlocal_after: Sequence[int] = (),
    ):
        super().__init__()
        groups = c_inner if depthwise else 1
        self.res_blocks = nn.ModuleList(
            ResBlock(c_in if i == 0 else c_out, c_inner, c_out, kernels_a[i % len(kernels_a)], kernel_b,
                     stride_b if i == 0 else (1, 1, 1), groups)
            for i in range(depth)
        )  # fmt: skip
        self.nonlocal_blocks = nn.ModuleDict({str(i): NonLocal(c_out) for i in nonlocal_after}) if nonlocal_after else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.res_blocks):
            x = block(x)
            if self.nonlocal_blocks is not None and str(i) in self.nonlocal_blocks:
                x = self.nonlocal_blocks[str(i)](x)
        return x


def head_pool(maps_bdthw: torch.Tensor) -> torch.Tensor:
    """The head's average pool, reduced to `[B, D]`: whole clip in time, 7x7 windows (stride 1) in space,
    averaged over the windows. For a 224 crop that is one window, the plain global mean."""
    t, h, w = maps_bdthw.shape[2:]
    window = (t, min(HEAD_SPATIAL_WINDOW, h), min(HEAD_SPATIAL_WINDOW, w))
    if window == (t, h, w):
        return maps_bdthw.mean(dim=(2, 3, 4))
    return F.avg_pool3d(maps_bdthw, window, stride=1).mean(dim=(2, 3, 4))


def init_weights(model: nn.Module) -> None:
    """pytorchvideo init_net_weights: Kaiming-normal (fan_out) convs, BN weight 1 / bias 0, Linear N(0, 0.01)."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)


def rename_keys(state: dict[str, torch.Tensor], rules: Sequence[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Apply regex `(pattern, replacement)` rules in order to every key (first match of each rule)."""
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            key = re.sub(pattern, repl, key, count=1)
        out[key] = value
    return out


# Bottleneck blocks per stage (He et al. 2016, Table 1; pytorchvideo _MODEL_STAGE_DEPTH).
STAGE_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
# Kinetics normalisation of every PySlowFast / pytorchvideo model (PySlowFast config/defaults.py DATA.MEAN,
# DATA.STD; pytorchvideo hub tutorial transforms): [0, 1] RGB, then (x - 0.45) / 0.225.
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


def kinetics_spec(num_frames: int, frame_step: int, size: int, feature_dim: int) -> InputSpec:
    return InputSpec(
        num_frames=num_frames, size=size, channels=3, sampling="dense", value_range=(0.0, 1.0),
        mean=KINETICS_MEAN, std=KINETICS_STD, feature_dim=feature_dim, frame_step=frame_step,
    )  # fmt: skip


class ResNet3d(VideoBackbone):
    """Single-pathway bottleneck 3D ResNet: stem, res2, [temporal max-pool], res3, res4, res5, head.

    Parameter names: `stem.*`, `res2..res5.res_blocks.i.*` (+ `nonlocal_blocks.i.*`), `fc.*`. Each family
    file states its layout (kernels, strides, pools) with sources and maps its checkpoint keys to these.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        depth: int,
        stem_kernel: Triple,
        kernels_a: Sequence[Sequence[Triple]],
        kernel_b: Triple = (1, 3, 3),
        temporal_strides: Sequence[int] = (1, 1, 1, 1),
        depthwise: bool = False,
        pool1: bool = False,
        nonlocal_after: Sequence[Sequence[int]] = ((), (), (), ()),
        dropout: float = 0.5,
        spec: InputSpec,
    ):
        super().__init__()
        self.input_spec = spec
        self.stem = Stem(spec.channels, 64, stem_kernel)
        # PySlowFast _POOL1["i3d"] = [2, 1, 1]: halves time after res2 (pytorchvideo stage1_pool).
        self.pool1 = nn.MaxPool3d((2, 1, 1), (2, 1, 1)) if pool1 else None
        c_in = 64
        for i, n in enumerate(STAGE_DEPTHS[depth]):
            c_inner, c_out = 64 * 2**i, 256 * 2**i
            stride = (temporal_strides[i], 1 if i == 0 else 2, 1 if i == 0 else 2)
            stage = ResStage(n, c_in, c_inner, c_out, kernels_a[i], kernel_b, stride, depthwise, nonlocal_after[i])
            self.add_module(f"res{i + 2}", stage)
            c_in = c_out
        self.feature_dim = c_in
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c_in, num_classes)
        init_weights(self)

    def forward_feature_maps(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """res5 output `[B, 2048, T', H/32, W/32]`."""
        self.check_input(x_bcthw)
        x = self.res2(self.stem(x_bcthw))
        if self.pool1 is not None:
            x = self.pool1(x)
        return self.res5(self.res4(self.res3(x)))

    def pool_features(self, maps_bdthw: torch.Tensor) -> torch.Tensor:
        return head_pool(maps_bdthw)
