"""SmallBigNet (Li et al., CVPR 2020, "Integrating Core and Contextual Views for Video Classification").

Follows the official xhl-video/SmallBigNet `smallbig50_no_extra` (models/SmallBig.py, models/blocks.py),
whose checkpoints load here with the identity key mapping: its `main.py` saves `{"epoch", "state_dict",
"best_metric", "optimizer"}` with DistributedDataParallel keys (`module.layer2.0.big1.1.weight`); the
shared loader takes `state_dict` and strips `module.`, and the module tree and names below are the
reference's (`conv1`, `bn1`, `layerX.Y.conv1..3`, `bn1..3`, `big1.1`, `big2.1`, `big3.1` (the BNs of the
big views), `downsample.0/.1`, `fc`).

The network (blocks.py, SmallBig.py):
- ResNet-50 ([3, 4, 6, 3] bottlenecks) with 3D convs that never mix frames: stem 1x7x7 conv stride
  (1,2,2), BN, ReLU, max-pool 1x3x3 stride (1,2,2) pad (0,1,1); bottleneck 1x1x1 -> 1x3x3 (spatial
  stride on it) -> 1x1x1 (x4); shortcut 1x1x1 conv stride (1,s,s) + BN; no temporal stride anywhere, so
  every stage keeps all T frames. BatchNorm eps 1e-5.
- layer1 is plain (`Bottleneck3D_000`); every block of layers 2-4 is a `SmallBig_module`, where each
  conv also sees a max-pooled "big view" of its input and shares its weights:
    out = relu(bn1(conv1(x))   + big1.bn(conv1(maxpool_3x3x3(x))))
    out = relu(bn2(conv2(out)) + big2.bn(conv2(maxpool_3x3x3(out))))
    out = relu(bn3(conv3(out)) + big3.bn(conv3(maxpool_Tx3x3(out))) + shortcut(x))
  The 3x3x3 pools have stride 1 and pad 1 (PyTorch pads max-pools with -inf). The last big view pools
  over all `t_length` frames (kernel (t_length, 3, 3), no temporal padding), so its single time step is
  added to every frame. Here that view is the maximum over the whole clip of any length (a max over time,
  then the 3x3 spatial max: the same maximum), which is what the reference built with `t_length=T` does.
- Head: global average of layer4 over time and space (2048-d, the input of `fc`), Linear to classes.
- Input (dataset/kinetics.py, scripts/kinetics.sh): 8 frames every 8th (`--t_length 8 --t_stride 8`),
  ImageNet mean/std on [0, 1] RGB, short side 256, 224 crops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vfx.models.base import VideoBackbone
from vfx.models.registry import ModelCard, register
from vfx.models.spec import InputSpec
from vfx.models.tsm import IMAGENET_MEAN, IMAGENET_STD

EXPANSION = 4


def _max3(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool3d(x, 3, 1, 1)


def _max_clip(x: torch.Tensor) -> torch.Tensor:
    """Max over all frames and a 3x3 neighbourhood: `[B, C, T, H, W] -> [B, C, 1, H, W]`."""
    return F.max_pool3d(x.amax(dim=2, keepdim=True), (1, 3, 3), 1, (0, 1, 1))


class Bottleneck(nn.Module):
    """Bottleneck of 3D convs with 1-frame kernels; `small_big` adds the three big views."""

    def __init__(self, c_in: int, planes: int, stride: int = 1, small_big: bool = False):
        super().__init__()
        out = planes * EXPANSION
        self.small_big = small_big
        self.conv1 = nn.Conv3d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(out)
        self.relu = nn.ReLU(inplace=True)
        if small_big:
            # Index 0 of each is the reference's parameter-free max-pool (kept so that the BN is `.1`).
            self.big1 = nn.Sequential(nn.Identity(), nn.BatchNorm3d(planes))
            self.big2 = nn.Sequential(nn.Identity(), nn.BatchNorm3d(planes))
            self.big3 = nn.Sequential(nn.Identity(), nn.BatchNorm3d(out))
        self.downsample = None
        if stride != 1 or c_in != out:
            self.downsample = nn.Sequential(nn.Conv3d(c_in, out, 1, (1, stride, stride), bias=False), nn.BatchNorm3d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        if not self.small_big:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            return self.relu(self.bn3(self.conv3(out)) + shortcut)
        out = self.relu(self.bn1(self.conv1(x)) + self.big1[1](self.conv1(_max3(x))))
        out = self.relu(self.bn2(self.conv2(out)) + self.big2[1](self.conv2(_max3(out))))
        out = self.bn3(self.conv3(out)) + self.big3[1](self.conv3(_max_clip(out)))  # broadcast over time
        return self.relu(out + shortcut)


class SmallBigNet(VideoBackbone):
    feature_dim = 2048

    def __init__(self, num_classes: int = 400, layers: tuple[int, int, int, int] = (3, 4, 6, 3),
                 num_frames: int = 8, size: int = 224, frame_step: int = 8):  # fmt: skip
        super().__init__()
        self.input_spec = InputSpec(
            num_frames=num_frames, size=size, channels=3, sampling="dense", value_range=(0.0, 1.0),
            mean=IMAGENET_MEAN, std=IMAGENET_STD, feature_dim=self.feature_dim, frame_step=frame_step,
        )  # fmt: skip
        self.conv1 = nn.Conv3d(3, 64, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        c_in = 64
        for i, n in enumerate(layers):
            planes, stride = 64 * 2**i, 1 if i == 0 else 2
            blocks = [Bottleneck(c_in, planes, stride, small_big=i > 0)]
            blocks += [Bottleneck(planes * EXPANSION, planes, 1, small_big=i > 0) for _ in range(1, n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            c_in = planes * EXPANSION
        self.fc = nn.Linear(self.feature_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # The reference's initialisation (SmallBig.py): Kaiming fan-out convs; the big views' BNs start at 0,
        # so that an ImageNet-initialised network starts as the plain ResNet.
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d) and ".big" in name:
                nn.init.zeros_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_feature_maps(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """layer4 output `[B, 2048, T, H/32, W/32]`."""
        self.check_input(x_bcthw)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x_bcthw))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def classify(self, features_bd: torch.Tensor) -> torch.Tensor:
        return self.fc(features_bd)  # the reference has no dropout before fc

    @staticmethod
    def key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return smallbig_key_map(state)


def smallbig_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SmallBigNet keys (after `module.` is stripped) -> ours: the same names, unchanged."""
    return dict(state)


@register("smallbignet_r50", card=ModelCard(
    weights="none released by the authors (xhl-video/SmallBigNet README publishes code and training scripts only)",
    weights_format="a checkpoint of its main.py: {'epoch', 'state_dict': {'module.conv1.weight', ..., "
    "'module.layer2.0.big1.1.weight', ..., 'module.fc.weight'}, 'best_metric', 'optimizer'}",
))  # fmt: skip
def smallbignet_r50(num_classes: int = 400, **kw) -> SmallBigNet:
    return SmallBigNet(num_classes=num_classes, **kw)
