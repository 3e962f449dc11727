"""Video backbones faithful to their official code, loading official checkpoints.

    >>> import vfx.models
    >>> vfx.models.list_models()
    ['corrnet_101', 'corrnet_26', 'corrnet_50', 'i3d_flow', 'i3d_rgb', 'mc3_18', 'msnet_r18', ...]
    >>> model = vfx.models.create_model("tsm_r50", num_classes=400, weights="TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth")
    >>> model(x_bcthw)                   # logits [B, 400], averaged over time
    >>> model.forward_features(x_bcthw)  # [B, D]
    >>> model.forward_feature_maps(x_bcthw)  # [B, D, T', h, w] before the final pooling
    >>> model.input_spec                 # InputSpec(num_frames=8, size=224, channels=3, ...)

Every model takes float `[B, C, T, H, W]` already normalised as `input_spec` says
(`input_spec.normalise(x)` maps raw [0, 255] values). One model family per file: i3d.py, tsm.py,
msnet.py, corrnet.py (+ R(2+1)D-26), video_resnet.py (R3D / MC3 / R(2+1)D, torchvision and IG-65M), s3d.py,
tsn.py, smallbignet.py; resnet.py is the 2D ResNet that TSM and MSNet build on;
correlation.py holds the correlation operators MSNet and CorrNet share; checkpoint.py the loading.
i3d_r50.py, i3d_nl.py, csn.py, slowfast.py share the 3D ResNet blocks of resnet3d.py; videomae.py is the
ViT-B VideoMAE.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from vfx.models import corrnet, i3d, msnet, tsm  # noqa: F401 - registers the builders
from vfx.models import csn, i3d_nl, i3d_r50, slowfast, videomae  # noqa: F401 - registers the builders
from vfx.models import s3d, smallbignet, tsn, video_resnet  # noqa: F401 - registers the builders
from vfx.models.base import VideoBackbone
from vfx.models.registry import build_on_meta, get_builder, registered_names
from vfx.models.resnet import ResNet2d
from vfx.models.spec import InputSpec


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return registered_names()


def create_model(
    name: str, *, num_classes: int = 400, weights: str | os.PathLike | Mapping | None = None, **kw
) -> VideoBackbone:
    """Build model `name` and, if `weights` is a path or a state dict, load it strictly.

    Official checkpoint formats are recognised (wrappers and `module.` prefixes stripped, keys renamed);
    any mismatch raises `vfx.errors.CheckpointError` listing missing, unexpected and mis-shaped keys.
    The model is returned in eval mode (call `.train()` to fine-tune).
    """
    model = get_builder(name)(num_classes=num_classes, **kw)
    if weights is not None:
        model.load_weights(weights)
    return model.eval()


def input_spec(name: str, **kw) -> InputSpec:
    """The `InputSpec` of model `name` built with `**kw`, without allocating its weights."""
    return build_on_meta(name, **kw).input_spec


def forward_features(model: VideoBackbone, x_bcthw: torch.Tensor) -> torch.Tensor:
    """`model.forward_features(x)` under `torch.inference_mode()`: `[B, D]`."""
    with torch.inference_mode():
        return model.forward_features(x_bcthw)


__all__ = ["InputSpec", "ResNet2d", "VideoBackbone", "create_model", "forward_features", "input_spec", "list_models"]
