"""Helpers of the features tests: a flow store with known flow, tiny model parameters, checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vfx.decode import probe
from vfx.engine import RunOptions, Stage, VideoOutput, run_stage
from vfx.features import ClipParams, FeatureParams, ModelChoice, SpatialParams
from vfx.types import VideoItem

#: The flow stores' quantisation bound (denseflow / TSN, vfx/store/reader.py `read_flow`).
BOUND = 20.0


def quantise(flow: np.ndarray, bound: float = BOUND) -> np.ndarray:
    return np.round((np.clip(flow, -bound, bound) + bound) * 255.0 / (2 * bound)).astype(np.uint8)


class ConstantFlowStage(Stage):
    """Writes a flow store (the layout `Store.read_flow` reads) whose every field is (dx, dy) pixels,
    between frames (i, i + 1) of each video at the source size. Stands in for `vfx extract-flow`."""

    kind = "flow"

    def __init__(self, dx: float, dy: float):
        self.dx, self.dy = dx, dy

    def provenance(self) -> dict[str, Any]:
        return {"stage": "test-constant-flow", "dx": self.dx, "dy": self.dy}

    def process(self, item: VideoItem) -> VideoOutput:
        info = probe(item.path)
        n = info.num_frames - 1
        field = np.empty((info.height, info.width, 2), np.float32)
        field[..., 0], field[..., 1] = self.dx, self.dy
        flow = np.broadcast_to(quantise(field), (n, info.height, info.width, 2))
        pairs = np.stack([np.arange(n), np.arange(1, n + 1)], axis=1).astype(np.int32)
        return VideoOutput(
            datasets={"flow": np.ascontiguousarray(flow), "flow_pairs": pairs},
            attrs={"bound": BOUND, "flow_format": "uint8", "fps": info.fps},
        )


def make_flow_store(items: list[VideoItem], path: Path, dx: float = 3.0, dy: float = -1.0) -> Path:
    run_stage(ConstantFlowStage(dx, dy), items, path, RunOptions(engine="serial", progress=False))
    return path


def tiny_params(*models: ModelChoice, **overrides) -> FeatureParams:
    """Small crops and few clips: the default tests run each forward in well under a second."""
    values: dict[str, Any] = dict(
        models=models,
        clips=ClipParams(clip_len=8, stride=40),
        spatial=SpatialParams(short_side=40, crop_size=32),
        batch_size=3,
        threads=1,
    )
    values.update(overrides)
    return FeatureParams(**values)


def save_seeded_weights(name: str, path: Path, seed: int = 1, **kwargs) -> Path:
    from vfx.models import create_model

    torch.manual_seed(seed)
    model = create_model(name, **kwargs)
    torch.save(model.state_dict(), path)
    return path
