"""Plain 2D ResNet with torchvision's layout and parameter names.

Key names match `torchvision.models.resnet` (conv1, bn1, layer1..4 with BasicBlock/Bottleneck
children conv1/bn1/conv2/bn2[/conv3/bn3]/downsample.0/.1, fc), so ImageNet checkpoints and the
TSM / MSNet releases (which wrap torchvision's ResNet) map onto it by renaming prefixes only.
The stride of a Bottleneck sits on its 3x3 conv ("ResNet v1.5"), as in torchvision and in the
TSM code (mit-han-lab/temporal-shift-module, ops/models.py builds `torchvision.models.resnet50`).

`width` scales every stage (64 is the standard network; tests use 8 for speed). `num_classes=0`
leaves out `fc`. Every block has a parameter-free `shift` hook applied to the input of its residual
branch only (identity by default); TSM and MSNet install their temporal shift there.
"""

from __future__ import annotations

import torch
from torch import nn

from vfx.errors import UsageError


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride
        # Hook on the residual branch input; TSM / MSNet put a temporal shift here ("blockres").
        self.shift: nn.Module = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(self.shift(x))))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        # Stride on the 3x3 conv (torchvision / TSM), not on the first 1x1 (original Caffe ResNet).
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.shift: nn.Module = nn.Identity()  # see BasicBlock

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(self.shift(x))))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


# depth -> (block type, blocks per stage); He et al. 2016, Table 1.
RESNET_SPECS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet2d(nn.Module):
    """ResNet on images `[N, C, H, W]`: `forward_maps` gives layer4 maps, `forward` gives logits."""

    def __init__(self, depth: int, num_classes: int = 1000, width: int = 64, in_channels: int = 3):
        super().__init__()
        if depth not in RESNET_SPECS:
            raise UsageError(f"ResNet depth {depth} is not one of {sorted(RESNET_SPECS)}")
        block, layers = RESNET_SPECS[depth]
        self.depth = depth
        self.block = block
        self.width = width
        self.in_planes = width
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, width, layers[0], 1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], 2)
        self.out_channels = width * 8 * block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        # num_classes=0 builds no classifier (timm's convention): `forward` returns pooled features.
        self.fc = nn.Linear(self.out_channels, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_planes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.in_planes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        mods = [block(self.in_planes, planes, stride, downsample)]
        self.in_planes = planes * block.expansion
        mods += [block(self.in_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def _init_weights(self) -> None:
        # torchvision's initialisation: Kaiming fan-out for convs, BN weight 1 / bias 0.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stem(self, x_nchw: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x_nchw))))

    def forward_maps(self, x_nchw: torch.Tensor) -> torch.Tensor:
        """Feature maps after layer4, before pooling: `[N, out_channels, H/32, W/32]`."""
        x = self.stem(x_nchw)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward_pooled(self, x_nchw: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled layer4 features `[N, out_channels]`."""
        return torch.flatten(self.avgpool(self.forward_maps(x_nchw)), 1)

    def forward(self, x_nchw: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_pooled(x_nchw))
