"""The two-stream network: ResNet backbones (or stored features) feeding a `FusionHead`.

Video mode: the spatial stream sees one RGB frame per segment `[B, K, 3, H, W]` (uint8 frames, as the
datasets give them, are normalised here on the network's device; float32 input is taken as normalised), the
temporal stream a stack of L flow fields per segment `[B, K, 2L, H, W]` (channels x0, y0, x1, y1, ...), both
through a `ResNet2d` up to layer4 (the paper fuses after the last conv layer, relu5_3 of VGG-16; layer4 is ResNet's).
Feature mode: per-segment features read from feature stores `[B, K, D, h, w]` (vectors as 1x1 maps) go
straight into the head.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from vfx.errors import CheckpointError, UsageError
from vfx.models.checkpoint import check_and_load, read_checkpoint, strip_wrappers
from vfx.models.resnet import ResNet2d
from vfx.train.fusion import FusionHead
from vfx.train.params import ARCHS, STREAMS, ModelConfig  # noqa: F401 - ModelConfig is public here too

# ImageNet statistics (torchvision), the convention of the RGB stream and of TSN.
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)


def normalize_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [..., 3, H, W] -> float32 (v / 255 - mean) / std (ImageNet statistics) on the tensor's device.
    In place on one new tensor: on a CPU, a new tensor per operation took 7x as long as the arithmetic."""
    mean = torch.tensor(RGB_MEAN, dtype=torch.float32, device=rgb.device).view(3, 1, 1)
    std = torch.tensor(RGB_STD, dtype=torch.float32, device=rgb.device).view(3, 1, 1)
    return rgb.to(torch.float32, copy=True).div_(255.0).sub_(mean).div_(std)


class TwoStreamNet(nn.Module):
    """`forward({"rgb": [B,K,3,H,W], "flow": [B,K,2L,H,W]})` -> list of logits (see `FusionHead`)."""

    def __init__(self, cfg: ModelConfig, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.num_classes = num_classes
        self.backbones = nn.ModuleDict()
        channels: dict[str, int] = {}
        if cfg.feature_mode:
            feature_channels = dict(cfg.feature_channels)
            for s in cfg.streams:
                channels[s] = feature_channels[s]
        else:
            for s in cfg.streams:
                net = ResNet2d(ARCHS[cfg.arch], width=cfg.width, in_channels=3 if s == "rgb" else cfg.flow_channels)
                # The backbone's own classifier is never used: the fusion head classifies.
                del net.fc
                self.backbones[s] = net
                channels[s] = net.out_channels
        self.head = FusionHead(
            cfg.streams,
            cfg.fusion,
            cfg.temporal_fusion,
            channels,
            num_classes,
            num_segments=cfg.num_segments,
            dropout=cfg.dropout,
        )

    def stream_maps(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-segment maps `[B*K, D, h, w]` of each stream."""
        maps = {}
        for s in self.cfg.streams:
            x = inputs[s]
            if x.dtype == torch.uint8:
                x = normalize_rgb(x)
            x_nchw = x.flatten(0, 1)
            maps[s] = self.backbones[s].forward_maps(x_nchw) if s in self.backbones else x_nchw
        return maps

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        batch = inputs[self.cfg.streams[0]].shape[0]
        return self.head(self.stream_maps(inputs), batch)


def cross_modality_conv1(rgb_weight_oihw: torch.Tensor, in_channels: int) -> torch.Tensor:
    """TSN's cross-modality initialisation (Wang et al. 2016, Sec. 3.2): average the RGB filters over their
    3 input channels and repeat the average for each of the `in_channels` flow channels."""
    return rgb_weight_oihw.mean(dim=1, keepdim=True).expand(-1, in_channels, -1, -1).contiguous()


def load_rgb_weights(model: TwoStreamNet, weights: str | os.PathLike | Mapping) -> None:
    """Initialise the backbones from RGB ResNet weights (torchvision key names, e.g. ImageNet).

    The spatial backbone takes them as they are; the temporal backbone too, except `conv1`, which gets the
    cross-modality average. The checkpoint's classifier (`fc.*`) is dropped; everything else must match
    exactly, or a `CheckpointError` lists the differences.
    """
    source = "state dict" if isinstance(weights, Mapping) else os.fspath(weights)
    raw = weights if isinstance(weights, Mapping) else read_checkpoint(weights)
    state = {k: v for k, v in strip_wrappers(raw, source).items() if not k.startswith("fc.")}
    if "conv1.weight" not in state:
        raise CheckpointError(f"{source}: no conv1.weight; expected a torchvision-style ResNet state dict")
    if not model.backbones:
        raise UsageError("--rgb-weights needs backbones; it does not apply in feature mode")
    for s, net in model.backbones.items():
        own = dict(state)
        if s == "flow":
            own["conv1.weight"] = cross_modality_conv1(state["conv1.weight"], model.cfg.flow_channels)
        check_and_load(net, own, source)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
