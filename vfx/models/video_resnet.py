"""Video ResNets of Tran et al. 2018 ("A Closer Look at Spatiotemporal Convolutions"): R3D, MC3, R(2+1)D.

`r3d_18`, `mc3_18`, `r2plus1d_18` follow torchvision `models/video/resnet.py`; `r2plus1d_34` is the
IG-65M R(2+1)D-34 of moabitcoin/ig65m-pytorch (`ig65m/models.py`), which is torchvision's VideoResNet
with two changes for the Caffe2 weights of facebookresearch/VMZ. The module tree and parameter names are
torchvision's, so both releases (plain state dicts) load with the identity key mapping:
`stem.0.weight`, `layer2.0.conv1.0.0.weight` ((2+1)D: `conv1.0.{0,1,3}` = spatial conv, BN, temporal
conv), `layer2.0.conv1.1.*` (BN), `layer2.0.downsample.{0,1}.*`, `fc.*`.

Numbers that matter for identical outputs (torchvision resnet.py unless said otherwise):
- Stems: R3D / MC3 `BasicStem` = 3x7x7 conv, stride (1,2,2), pad (1,3,3), 64 channels, BN, ReLU;
  R(2+1)D `R2Plus1dStem` = 1x7x7 conv to 45 channels, stride (1,2,2), BN, ReLU, then 3x1x1 conv to 64,
  BN, ReLU. No max-pool. Convs have no bias.
- BasicBlock: conv1 (stride s) + BN + ReLU, conv2 + BN, add the shortcut, ReLU. Shortcut: 1x1x1 conv
  + BN when the stride or width changes, with stride (s,s,s), or (1,s,s) for 2D-only convs (MC3's
  `Conv3DNoTemporal.get_downsample_stride`).
- MC3-18: full 3x3x3 convs in layer1, 1x3x3 convs in layers 2-4 (`[Conv3DSimple] + [Conv3DNoTemporal]*3`).
- (2+1)D conv: 1x3x3 spatial conv (stride (1,s,s)) to M channels, BN, ReLU, 3x1x1 temporal conv
  (stride (s,1,1)). torchvision computes one M per block from the block's input and output widths,
  `M = (in * out * 27) // (in * 9 + 3 * out)`, and uses it for both convs of the block.
- R(2+1)D-34 (ig65m models.py): layers [3,4,6,3]; the second conv of the first block of layers 2-4 gets
  the M of a `planes -> planes` conv instead (288, 576, 1152: the Caffe2 layout, VMZ issue 89 /
  torchvision issue 1265), and every BatchNorm has eps 1e-3 (momentum 0.9: training only).
- Head: global average pool of layer4 (the 512-d feature), Linear to classes, no dropout.
- Input (torchvision `VideoClassification` preset of these weights): [0, 1] RGB, mean (0.43216,
  0.394666, 0.37645), std (0.22803, 0.22145, 0.216989), resized to 128x171, centre crop 112x112; 16-frame
  clips at `frame_rate=15` (the weights' docs), i.e. every 2nd frame of Kinetics' ~30 fps videos, hence
  frame_step 2. vfx resizes the short side to 128 instead of to exactly 128x171: the same for 4:3 frames.
  IG-65M (ig65m cli/extract.py): the same mean/std, short side 128, 32 consecutive frames (frame_step 1).
"""

from __future__ import annotations

import torch
from torch import nn

from vfx.models.base import VideoBackbone
from vfx.models.registry import ModelCard, register
from vfx.models.spec import InputSpec

# torchvision transforms/_presets.py VideoClassification defaults (Kinetics-400 statistics).
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)

Triple = tuple[int, int, int]


def midplanes(c_in: int, c_out: int) -> int:
    """Middle width of a (2+1)D conv with the parameters of a full 3x3x3 conv (Tran et al. 2018, Sec. 3.5)."""
    return (c_in * c_out * 27) // (c_in * 9 + 3 * c_out)


class Conv2Plus1d(nn.Sequential):
    """1x3x3 spatial conv -> BN -> ReLU -> 3x1x1 temporal conv (children 0..3, torchvision's indices)."""

    def __init__(self, c_in: int, c_out: int, mid: int, stride: int = 1, bn_eps: float = 1e-5):
        super().__init__(
            nn.Conv3d(c_in, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
            nn.BatchNorm3d(mid, eps=bn_eps),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, c_out, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
        )


def conv3d_full(c_in: int, c_out: int, mid: int, stride: int = 1, bn_eps: float = 1e-5) -> nn.Module:
    return nn.Conv3d(c_in, c_out, 3, stride, 1, bias=False)


def conv3d_spatial(c_in: int, c_out: int, mid: int, stride: int = 1, bn_eps: float = 1e-5) -> nn.Module:
    return nn.Conv3d(c_in, c_out, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)


# conv kind -> (builder, does it stride in time); the shortcut strides the same axes.
CONV_KINDS = {"3d": (conv3d_full, True), "2d": (conv3d_spatial, False), "2plus1d": (Conv2Plus1d, True)}


class BasicBlock3d(nn.Module):
    def __init__(self, c_in: int, planes: int, kind: str, stride: int = 1, mid2: int | None = None, bn_eps: float = 1e-5):
        super().__init__()
        conv, temporal = CONV_KINDS[kind]
        mid = midplanes(c_in, planes)
        self.conv1 = nn.Sequential(conv(c_in, planes, mid, stride, bn_eps), nn.BatchNorm3d(planes, eps=bn_eps), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv(planes, planes, mid if mid2 is None else mid2, 1, bn_eps), nn.BatchNorm3d(planes, eps=bn_eps))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != planes:
            ds_stride = (stride if temporal else 1, stride, stride)
            self.downsample = nn.Sequential(
                nn.Conv3d(c_in, planes, 1, ds_stride, bias=False), nn.BatchNorm3d(planes, eps=bn_eps)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + shortcut)


class VideoResNet(VideoBackbone):
    """R3D / MC3 / R(2+1)D with BasicBlocks: `[B, 3, T, H, W]` -> layer4 `[B, 512, T/8, H/16, W/16]`."""

    feature_dim = 512

    def __init__(
        self,
        kinds: tuple[str, str, str, str],
        layers: tuple[int, int, int, int] = (2, 2, 2, 2),
        num_classes: int = 400,
        num_frames: int = 16,
        size: int = 112,
        caffe2_widths: bool = False,
        bn_eps: float = 1e-5,
        frame_step: int = 2,
    ):
        super().__init__()
        self.input_spec = InputSpec(
            num_frames=num_frames, size=size, channels=3, sampling="dense", value_range=(0.0, 1.0),
            mean=KINETICS_MEAN, std=KINETICS_STD, feature_dim=self.feature_dim, short_side=128,
            frame_step=frame_step,
        )  # fmt: skip
        if kinds[0] == "2plus1d":
            self.stem = nn.Sequential(
                nn.Conv3d(3, 45, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
                nn.BatchNorm3d(45, eps=bn_eps),
                nn.ReLU(inplace=True),
                nn.Conv3d(45, 64, (3, 1, 1), 1, (1, 0, 0), bias=False),
                nn.BatchNorm3d(64, eps=bn_eps),
                nn.ReLU(inplace=True),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv3d(3, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                nn.BatchNorm3d(64, eps=bn_eps),
                nn.ReLU(inplace=True),
            )
        c_in = 64
        for i, (kind, n) in enumerate(zip(kinds, layers)):
            planes, stride = 64 * 2**i, 1 if i == 0 else 2
            # ig65m models.py: the first block's second conv takes the planes -> planes width (Caffe2).
            mid2 = midplanes(planes, planes) if caffe2_widths and i > 0 and kind == "2plus1d" else None
            blocks = [BasicBlock3d(c_in, planes, kind, stride, mid2, bn_eps)]
            blocks += [BasicBlock3d(planes, planes, kind, 1, None, bn_eps) for _ in range(1, n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            c_in = planes
        self.fc = nn.Linear(self.feature_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation (VideoResNet.__init__): Kaiming fan-out, BN 1/0, fc N(0, 0.01).
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_feature_maps(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """layer4 output `[B, 512, T/8, H/16, W/16]` (T/8 rounded up: strided convs pad by 1)."""
        self.check_input(x_bcthw)
        x = self.stem(x_bcthw)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def classify(self, features_bd: torch.Tensor) -> torch.Tensor:
        return self.fc(features_bd)  # torchvision's VideoResNet has no dropout

    @staticmethod
    def key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return video_resnet_key_map(state)


def video_resnet_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision / ig65m keys -> ours: the module tree is the same, so names pass through unchanged."""
    return dict(state)


_TV_FORMAT = "a plain torchvision state dict ({'stem.0.weight': ..., 'layer1.0.conv1.0.weight': ..., 'fc.weight': ...})"
_TV_FLOPS = "torchvision models/video/resnet.py weights meta (_ops, num_params) at 16x112^2"


@register("r3d_18", card=ModelCard(
    weights="torchvision R3D_18_Weights.KINETICS400_V1: https://download.pytorch.org/models/r3d_18-b3b3357e.pth",
    weights_format=_TV_FORMAT, paper_gflops=40.697, paper_params_m=33.371, paper_source=_TV_FLOPS,
))  # fmt: skip
def r3d_18(num_classes: int = 400, **kw) -> VideoResNet:
    return VideoResNet(("3d",) * 4, num_classes=num_classes, **kw)


@register("mc3_18", card=ModelCard(
    weights="torchvision MC3_18_Weights.KINETICS400_V1: https://download.pytorch.org/models/mc3_18-a90a0ba3.pth",
    weights_format=_TV_FORMAT, paper_gflops=43.343, paper_params_m=11.695, paper_source=_TV_FLOPS,
))  # fmt: skip
def mc3_18(num_classes: int = 400, **kw) -> VideoResNet:
    return VideoResNet(("3d", "2d", "2d", "2d"), num_classes=num_classes, **kw)


@register("r2plus1d_18", card=ModelCard(
    weights="torchvision R2Plus1D_18_Weights.KINETICS400_V1: https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth",
    weights_format=_TV_FORMAT, paper_gflops=40.519, paper_params_m=31.505, paper_source=_TV_FLOPS,
))  # fmt: skip
def r2plus1d_18(num_classes: int = 400, **kw) -> VideoResNet:
    return VideoResNet(("2plus1d",) * 4, num_classes=num_classes, **kw)


@register("r2plus1d_34", card=ModelCard(
    weights="moabitcoin/ig65m-pytorch release v1.0.0 (r2plus1d_34_clip32_ft_kinetics_from_ig65m-ade133f1.pth: Kinetics-400, "
    "400 classes; r2plus1d_34_clip32_ig65m_from_scratch-449a7af9.pth: IG-65M, num_classes=359; clip8 variants for 8 frames)",
    weights_format="a plain state dict with torchvision VideoResNet names (what ig65m's models.py loads)",
))  # fmt: skip
def r2plus1d_34(num_classes: int = 400, num_frames: int = 32, **kw) -> VideoResNet:
    # ig65m models.py: Caffe2 widths and BatchNorm eps 1e-3 (its "exact Caffe2" settings).
    return VideoResNet(("2plus1d",) * 4, (3, 4, 6, 3), num_classes=num_classes, num_frames=num_frames,
                       caffe2_widths=True, bn_eps=1e-3, frame_step=1, **kw)  # fmt: skip
