"""S3D: separable 3D Inception-v1 (Xie et al., ECCV 2018, "Rethinking Spatiotemporal Feature Learning").

Follows torchvision `models/video/s3d.py`, whose Kinetics-400 weights (a plain state dict) load here
with the identity key mapping: the module tree is the same (`features.N` in torchvision's order,
`Conv3dNormActivation` = `[conv, BN, ReLU]` children `0, 1, 2`, Inception blocks with `branch0..3`,
`classifier.1` the 1x1x1 logits conv).

Numbers that matter for identical outputs (torchvision s3d.py):
- Separable conv `k, s, p`: 1xkxk conv (stride (1,s,s), pad (0,p,p)) + BN + ReLU, then kx1x1 conv
  (stride (s,1,1), pad (p,0,0)) + BN + ReLU; every conv has no bias; BatchNorm eps 1e-3.
- Stem: separable 7/2/3 to 64; max-pool 1x3x3 stride (1,2,2) pad (0,1,1); 1x1x1 conv 64; separable
  3/1/1 to 192; max-pool 1x3x3 stride (1,2,2).
- Inception blocks: branch0 1x1x1; branch1 and branch2 1x1x1 then separable 3/1/1; branch3 max-pool
  3x3x3 stride 1 pad 1 then 1x1x1; widths as Inception-v1 (I3D); max-pool 3x3x3 stride 2 pad 1 after
  Mixed_3c, 2x2x2 stride 2 after Mixed_4f. PyTorch's max-pool pads with -inf.
- Head: average pool 2x7x7 stride 1 without padding, dropout 0.2, 1x1x1 conv with bias, logits
  averaged over the remaining time and space. `forward_features` is the mean of that average pool's
  output (what torchvision feeds its classifier, averaged); the head is linear, so `fc` of it equals the
  reference's averaged logits. For maps smaller than 2x7x7 the window is clipped to the map (torchvision
  would raise).
- Input (the weights' `VideoClassification` preset): [0, 1] RGB, torchvision's Kinetics mean/std,
  resize to 256x256 (vfx: short side 256), centre crop 224; evaluated at `frame_rate=15` (every 2nd
  frame of Kinetics' ~30 fps videos, hence frame_step 2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vfx.models.base import VideoBackbone
from vfx.models.registry import ModelCard, register
from vfx.models.spec import InputSpec
from vfx.models.video_resnet import KINETICS_MEAN, KINETICS_STD

BN_EPS = 1e-3  # torchvision s3d.py: partial(nn.BatchNorm3d, eps=0.001, momentum=0.001)

Triple = tuple[int, int, int]


def conv_bn_relu(c_in: int, c_out: int, kernel: Triple = (1, 1, 1), stride: Triple = (1, 1, 1), padding: Triple = (0, 0, 0)) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm3d(c_out, eps=BN_EPS), nn.ReLU(inplace=True)
    )


def separable(c_in: int, c_out: int, k: int, s: int, p: int) -> nn.Sequential:
    """1xkxk spatial conv-BN-ReLU, then kx1x1 temporal conv-BN-ReLU."""
    return nn.Sequential(
        conv_bn_relu(c_in, c_out, (1, k, k), (1, s, s), (0, p, p)),
        conv_bn_relu(c_out, c_out, (k, 1, 1), (s, 1, 1), (p, 0, 0)),
    )


class SepInception(nn.Module):
    def __init__(self, c_in: int, b0: int, b1_mid: int, b1: int, b2_mid: int, b2: int, b3: int):
        super().__init__()
        self.branch0 = conv_bn_relu(c_in, b0)
        self.branch1 = nn.Sequential(conv_bn_relu(c_in, b1_mid), separable(b1_mid, b1, 3, 1, 1))
        self.branch2 = nn.Sequential(conv_bn_relu(c_in, b2_mid), separable(b2_mid, b2, 3, 1, 1))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, 1, 1), conv_bn_relu(c_in, b3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


# (in, b0, b1_mid, b1, b2_mid, b2, b3) of Mixed_3b .. Mixed_5c: torchvision s3d.py (= Inception-v1).
_BLOCKS = [
    (192, 64, 96, 128, 16, 32, 32),
    (256, 128, 128, 192, 32, 96, 64),
    "pool3",
    (480, 192, 96, 208, 16, 48, 64),
    (512, 160, 112, 224, 24, 64, 64),
    (512, 128, 128, 256, 24, 64, 64),
    (512, 112, 144, 288, 32, 64, 64),
    (528, 256, 160, 320, 32, 128, 128),
    "pool2",
    (832, 256, 160, 320, 32, 128, 128),
    (832, 384, 192, 384, 48, 128, 128),
]


class S3D(VideoBackbone):
    feature_dim = 1024
    classifier_keys = ("classifier.1.weight", "classifier.1.bias")

    def __init__(self, num_classes: int = 400, num_frames: int = 16, size: int = 224, dropout: float = 0.2):
        super().__init__()
        self.input_spec = InputSpec(
            num_frames=num_frames, size=size, channels=3, sampling="dense", value_range=(0.0, 1.0),
            mean=KINETICS_MEAN, std=KINETICS_STD, feature_dim=self.feature_dim, short_side=256, frame_step=2,
        )  # fmt: skip
        layers: list[nn.Module] = [
            separable(3, 64, 7, 2, 3),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            conv_bn_relu(64, 64),
            separable(64, 192, 3, 1, 1),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        ]
        for b in _BLOCKS:
            if b == "pool3":
                layers.append(nn.MaxPool3d(3, 2, 1))
            elif b == "pool2":
                layers.append(nn.MaxPool3d(2, 2, 0))
            else:
                layers.append(SepInception(*b))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Conv3d(self.feature_dim, num_classes, 1, bias=True))

    def forward_feature_maps(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """Mixed_5c output `[B, 1024, T/8, H/32, W/32]`."""
        self.check_input(x_bcthw)
        return self.features(x_bcthw)

    def pool_features(self, maps_bdthw: torch.Tensor) -> torch.Tensor:
        # torchvision: AvgPool3d((2, 7, 7), stride=1) then the mean of the logits over what is left.
        t, h, w = maps_bdthw.shape[2:]
        return F.avg_pool3d(maps_bdthw, (min(2, t), min(7, h), min(7, w)), stride=1).mean(dim=(2, 3, 4))

    def classify(self, features_bd: torch.Tensor) -> torch.Tensor:
        return self.classifier(features_bd[:, :, None, None, None]).flatten(1)

    @staticmethod
    def key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return s3d_key_map(state)


def s3d_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision keys -> ours: the module tree is the same, so names pass through unchanged."""
    return dict(state)


@register("s3d", card=ModelCard(
    weights="torchvision S3D_Weights.KINETICS400_V1: https://download.pytorch.org/models/s3d-d76dad2f.pth",
    weights_format="a plain torchvision state dict ({'features.0.0.0.weight': ..., 'classifier.1.weight': ...})",
    paper_gflops=17.979, paper_params_m=8.320, paper_source="torchvision models/video/s3d.py weights meta (_ops, num_params) at 16x224^2",
))  # fmt: skip
def s3d(num_classes: int = 400, **kw) -> S3D:
    return S3D(num_classes=num_classes, **kw)
