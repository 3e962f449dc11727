"""TSN: Temporal Segment Networks (Wang et al., ECCV 2016) with a ResNet-50 per segment.

Follows open-mmlab/mmaction2's TSN (configs/_base_/models/tsn_r50.py: `Recognizer2D` with
`backbone=ResNet(depth=50)` and `TSNHead(spatial_type='avg', consensus=AvgConsensus, dropout 0.4)`):
each of the T segments runs through a 2D ResNet-50 (torchvision layout, stride on the 3x3 conv:
mmaction2 `style='pytorch'`), layer4 maps are averaged over space, then over segments (the avg
consensus), and `fc` maps that 2048-d feature to logits: the mean of the per-segment logits, since the
head is linear. Input (mmaction2 TSN test pipeline): ImageNet mean/std on [0, 1] RGB (its
`data_preprocessor` mean 123.675.. / std 58.395.. on [0, 255]), short side 256, centre crop 224, 25
segments (`SampleFrames(clip_len=1, num_clips=25, test_mode=True)`; the model zoo's FLOPs are for 25).

Two checkpoint formats load (`tsn_key_map`):
- a torchvision `resnet50` state dict (`conv1.weight`, `layer1.0.bn1.running_mean`, `fc.weight` with
  1000 ImageNet classes: build with num_classes=1000), the weights mmaction2's TSN starts from;
- an mmaction2 TSN checkpoint `{"meta": ..., "state_dict": ...}` whose ResNet uses mmcv `ConvModule`
  names: `backbone.conv1.conv.weight` / `backbone.conv1.bn.*` (torchvision `conv1` / `bn1`),
  `backbone.layerX.Y.convN.conv.weight` / `.convN.bn.*` (`convN` / `bnN`),
  `backbone.layerX.Y.downsample.conv` / `.bn` (`downsample.0` / `.1`), and `cls_head.fc_cls.*` (`fc`).
  This is the inverse of mmaction2 ResNet `_load_torchvision_checkpoint`'s renaming.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from vfx.models.registry import ModelCard, register
from vfx.models.resnet import ResNet2d
from vfx.models.spec import InputSpec
from vfx.models.tsm import IMAGENET_MEAN, IMAGENET_STD, SegmentResNet


class TSNResNet(SegmentResNet):
    """ResNet on every segment, average consensus: `[B, 3, T, H, W]` -> `[B, D, T, H/32, W/32]` maps."""

    def __init__(self, depth: int = 50, num_classes: int = 400, num_segments: int = 25, size: int = 224,
                 width: int = 64, dropout: float = 0.4):  # fmt: skip
        super().__init__()
        self.backbone = ResNet2d(depth, num_classes=0, width=width)
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
        return tsn_key_map(state)


_MM_CONV = re.compile(r"^backbone\.(.*?)conv(\d*)\.conv\.(.+)$")
_MM_BN = re.compile(r"^backbone\.(.*?)conv(\d*)\.bn\.(.+)$")


def tsn_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision resnet50 or mmaction2 TSN keys -> ours (`backbone.*`, `fc.*`). Our own keys pass through."""
    out = {}
    for key, value in state.items():
        new = key
        if key.startswith("cls_head.fc_cls."):
            new = "fc." + key[len("cls_head.fc_cls."):]
        elif key.startswith("backbone."):
            # mmcv ConvModule: `X.conv` is torchvision's conv, `X.bn` its BN (`conv1.bn` -> `bn1`); a block's
            # shortcut `downsample.conv/.bn` is torchvision's `downsample.0/.1`.
            new = key.replace(".downsample.conv.", ".downsample.0.").replace(".downsample.bn.", ".downsample.1.")
            if (m := _MM_CONV.match(new)) is not None:
                new = f"backbone.{m[1]}conv{m[2]}.{m[3]}"
            elif (m := _MM_BN.match(new)) is not None:
                new = f"backbone.{m[1]}bn{m[2]}.{m[3]}"
        elif not key.startswith("fc."):
            new = "backbone." + key  # torchvision resnet50: conv1, bn1, layerX.Y.*
        out[new] = value
    return out


@register("tsn_r50", card=ModelCard(
    weights="open-mmlab/mmaction2 model zoo, configs/recognition/tsn/README.md (e.g. tsn_imagenet-pretrained-r50_8xb32-"
    "1x1x8-100e_kinetics400-rgb_20220906-2692d16c.pth); or torchvision ResNet50_Weights (num_classes=1000)",
    weights_format="an mmaction2 checkpoint {'meta', 'state_dict': {'backbone.conv1.conv.weight', ..., 'cls_head.fc_cls.weight'}}"
    " or a plain torchvision resnet50 state dict",
    paper_gflops=102.7, paper_params_m=24.33, paper_source="mmaction2 configs/recognition/tsn/README.md, TSN R50 1x1x8: 25 segments",
))  # fmt: skip
def tsn_r50(num_classes: int = 400, **kw) -> TSNResNet:
    return TSNResNet(50, num_classes=num_classes, **kw)
