"""Common surface of every video backbone: input checks, pooling to `[B, D]`, classification.

Subclasses implement `forward_feature_maps(x) -> [B, D, T', h, w]` (the maps right before the
final pooling) and may override `pool_features`; `forward_features` and `forward` follow from them.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping

import torch
from torch import nn

from vfx.errors import UsageError
from vfx.models.checkpoint import KeyMap, load_weights
from vfx.models.spec import InputSpec


class VideoBackbone(nn.Module, ABC):
    """Base class: `model(x_bcthw) -> logits [B, num_classes]`, averaged over time."""

    input_spec: InputSpec
    # Set by subclasses whose weights depend on the clip length (CorrNet's per-frame filters).
    fixed_num_frames: int | None = None
    # Keys whose first dimension is the class count (a mismatch there only means another num_classes).
    classifier_keys: tuple[str, ...] = ("fc.weight", "fc.bias")

    def check_input(self, x_bcthw: torch.Tensor) -> None:
        spec = self.input_spec
        if x_bcthw.dim() != 5:
            raise UsageError(f"{type(self).__name__} expects float [B, C, T, H, W], got shape {tuple(x_bcthw.shape)}")
        if x_bcthw.shape[1] != spec.channels:
            raise UsageError(
                f"{type(self).__name__} expects {spec.channels} channels, got {x_bcthw.shape[1]} (shape {tuple(x_bcthw.shape)})"
            )
        if self.fixed_num_frames is not None and x_bcthw.shape[2] != self.fixed_num_frames:
            raise UsageError(
                f"{type(self).__name__} was built for T={self.fixed_num_frames} frames (its correlation weights are per frame), "
                f"got T={x_bcthw.shape[2]}; build it with num_frames={x_bcthw.shape[2]}"
            )
        if not x_bcthw.is_floating_point():
            raise UsageError(f"{type(self).__name__} expects a float tensor, got {x_bcthw.dtype}")

    @abstractmethod
    def forward_feature_maps(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """Maps right before the final pooling: `[B, D, T', h, w]`."""

    def pool_features(self, maps_bdthw: torch.Tensor) -> torch.Tensor:
        """Global average over space and time: `[B, D, T', h, w] -> [B, D]`."""
        return maps_bdthw.mean(dim=(2, 3, 4))

    def forward_features(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """The pooled feature a feature extractor stores, averaged over time: `[B, D]`."""
        return self.pool_features(self.forward_feature_maps(x_bcthw))

    def classify(self, features_bd: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features_bd))

    def forward(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        return self.classify(self.forward_features(x_bcthw))

    @staticmethod
    @abstractmethod
    def key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The family's pure mapping from official key names (wrappers already stripped) to ours."""

    def load_weights(self, weights: str | os.PathLike | Mapping) -> None:
        key_map: KeyMap = type(self).key_map
        load_weights(self, weights, key_map, self.classifier_keys)
