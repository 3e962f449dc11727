"""The library entry points behind the commands: `vfx.extract_frames(...)` does what `vfx extract-frames` does.

Each takes the command's INPUT and `--output`, then its flags as keyword arguments with the same names and the
same defaults (None: not given, so the recipe's value or the default applies; see each params class's
`OPTION_DEFAULTS`), and `run`, the execution options of `vfx.RunOptions` (`--engine`, `--workers`, ...).
The commands only declare their options and call these, so the two give the same stores.

    import vfx
    vfx.extract_frames("videos/", "frames.vfx", short_side=256, run=vfx.RunOptions(engine="serial"))
    vfx.extract_flow(None, "flow.vfx", from_frames="frames.vfx", recipe="tsn-ucf101")
    vfx.extract_features("videos/", "i3d.vfx", model="i3d_rgb", weights="rgb_imagenet.pt")
    vfx.train_fusion("run/", frames="frames.vfx", flow="flow.vfx", epochs=10)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vfx.engine import RunOptions, RunSummary, run_stage
from vfx.errors import UsageError

PathLike = str | os.PathLike


def extract_frames(
    input: PathLike,
    output: PathLike,
    *,
    recipe: str | dict | None = None,
    dataset: str | None = None,
    split: int | None = None,
    root: PathLike | None = None,
    run: RunOptions | None = None,
    log: Callable[[str], None] = print,
    **options: Any,
) -> RunSummary:
    """Decode the videos of `input` and store their sampled, resized frames (`vfx extract-frames`).

    `options`: `FrameParams.from_options` (short_side, size, keep_size, upscale, interpolation, crop, fps,
    every, segments, segment_pick, seed, format, quality). `log` gets the start-of-run notes (a frame size
    that will not be applied).
    """
    from vfx.frames import FrameParams, FramesStage, size_notice
    from vfx.sources import load_items

    params = FrameParams.from_options(recipe, **options)
    items = load_items(input, dataset=dataset, split=split, root=root)
    notice = size_notice(params, items)
    if notice:
        log(notice)
    return run_stage(FramesStage(params), items, output, run or RunOptions())


def extract_flow(
    input: PathLike | None,
    output: PathLike,
    *,
    from_frames: PathLike | None = None,
    recipe: str | dict | None = None,
    dataset: str | None = None,
    split: int | None = None,
    root: PathLike | None = None,
    run: RunOptions | None = None,
    **options: Any,
) -> RunSummary:
    """Optical flow of the videos of `input`, or of the frames of the frames store `from_frames` (`vfx extract-flow`).

    With both, flow is computed on the stored frames of those videos of `input` that the store holds; with
    `from_frames` alone, on every video of the store. `options`: `FlowParams.from_options` (backend, preset,
    device, batch_size, size, short_side, step, bound, format, jpeg_quality and the TV-L1 values).
    """
    from vfx.flow.params import FlowParams
    from vfx.flow.stage import FlowStage
    from vfx.sources import load_items
    from vfx.store.items import items_from_store

    if input is None and from_frames is None:
        raise UsageError("give INPUT (videos), --from-frames STORE, or both")
    params = FlowParams.from_options(recipe, from_frames=from_frames, **options)
    if from_frames is None:
        items = load_items(input, dataset=dataset, split=split, root=root)
    else:
        items = items_from_store(from_frames, kind="frames", flag="--from-frames")
        if input is not None:
            wanted = {item.video_id for item in load_items(input, dataset=dataset, split=split, root=root)}
            items = [item for item in items if item.video_id in wanted]
            if not items:
                raise UsageError(f"{from_frames}: the frames store holds none of the videos of {input}")
    return run_stage(FlowStage(params), items, output, run or RunOptions())


def extract_features(
    input: PathLike | None,
    output: PathLike,
    *,
    recipe: str | dict | None = None,
    dataset: str | None = None,
    split: int | None = None,
    root: PathLike | None = None,
    run: RunOptions | None = None,
    **options: Any,
) -> RunSummary:
    """Per-clip backbone features of the videos of `input` (`vfx features`).

    `input` may be a frames or flow store (it then also serves as `from_frames` / `from_flow`), or None with
    `from_frames` or `from_flow` given: every video of that store. Models without weights raise a
    `RandomWeightsWarning`. `options`: `FeatureParams.from_options` (model, weights, from_frames, from_flow,
    clip_len, stride, num_clips, segments, frame_step, short_side, crop, crop_size, crop_reduce, flow_clip,
    batch_size, precision, feature_dtype, keep_spatial, motion_maps, gpus_per_worker, threads).
    """
    from vfx.features.extract import extract_features as run_features
    from vfx.features.extract import load_feature_items, prepare_features
    from vfx.features.params import FeatureParams

    run = run or RunOptions()
    params = FeatureParams.from_options(recipe, **options)
    items, params = load_feature_items(input, params, dataset=dataset, split=split, root=root)
    return run_features(items, output, prepare_features(params, run), run)


def train_fusion(
    output: PathLike,
    *,
    recipe: str | dict | None = None,
    resume: bool = False,
    progress: bool = True,
    metrics_json: PathLike | None = None,
    log: Callable[[str], None] = print,
    **options: Any,
):
    """Train a two-stream fusion network on frames/flow or feature stores into the run directory `output`
    (`vfx train-fusion`); returns `vfx.train.TrainResult` (final held-out metrics, history, model).

    `options`: `TrainParams.from_options` (frames, flow, features, streams, fusion, arch, epochs, seed, ...).
    """
    from vfx.train.loop import train_fusion as train
    from vfx.train.params import TrainParams

    params = TrainParams.from_options(recipe, **options)
    return train(params, Path(output), resume=resume, progress=progress, metrics_json=metrics_json, log=log)
