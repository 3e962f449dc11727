"""`vfx features`: videos (or a frames store, and a flow store for flow models) -> per-clip backbone features."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from vfx.cli.app import app, handle_errors
from vfx.cli.common import (
    DatasetOpt,
    InputArg,
    OutputOpt,
    RecipeOpt,
    RootOpt,
    SplitOpt,
    finish,
    run_options,
)
from vfx.engine import RunOptions
from vfx.errors import UsageError
from vfx.recipes import load_recipe, merge_options

#: Recipe keys of a `[features]` table and their defaults (None: from the first model's input spec).
DEFAULTS = {
    "model": None,
    "weights": None,
    "from_frames": None,
    "from_flow": None,
    "clip_len": None,
    "stride": None,
    "num_clips": None,
    "segments": None,
    "frame_step": None,
    "short_side": None,
    "crop": "center",
    "crop_size": None,
    "crop_reduce": "mean",
    "flow_clip": 20.0,
    "batch_size": 8,
    "precision": "fp32",
    "feature_dtype": "float32",
    "keep_spatial": False,
    "motion_maps": False,
    "gpus_per_worker": None,
    "threads": None,
}


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def pair_weights(models: list[str], weights: list[str]) -> list[str | None]:
    """`--weights` in model order, or as NAME=PATH; models without weights run randomly initialised."""
    named = {}
    plain = []
    for w in weights:
        name, sep, path = w.partition("=")
        if sep and name in models:
            named[name] = path
        else:
            plain.append(w)
    if plain and named:
        raise UsageError("give --weights either all as NAME=PATH or all in model order, not mixed")
    if plain:
        if len(plain) != len(models):
            raise UsageError(
                f"{len(plain)} --weights for {len(models)} --model ({', '.join(models)}): give one per model, "
                "in order, or NAME=PATH"
            )
        return list(plain)
    return [named.get(m) for m in models]


def feature_params(opts: dict):
    """FeatureParams from merged options (command line over recipe over DEFAULTS)."""
    from vfx.features.params import ClipParams, FeatureParams, ModelChoice, SpatialParams

    models = _as_list(opts["model"])
    if not models:
        raise UsageError("give a model: --model NAME (e.g. i3d_rgb; several for two-stream features)")
    weights = pair_weights(models, _as_list(opts["weights"]))
    gpus = opts["gpus_per_worker"]
    if gpus is None:
        import torch

        gpus = 1.0 if torch.cuda.is_available() else 0.0

    def opt_int(key):
        return None if opts[key] is None else int(opts[key])

    return FeatureParams(
        models=tuple(ModelChoice.of(m, w) for m, w in zip(models, weights)),
        clips=ClipParams(
            clip_len=opt_int("clip_len"), stride=opt_int("stride"), num_clips=opt_int("num_clips"),
            segments=opt_int("segments"), frame_step=opt_int("frame_step"),
        ),
        spatial=SpatialParams(
            short_side=opt_int("short_side"), crop=str(opts["crop"]), crop_size=opt_int("crop_size"),
            crop_reduce=str(opts["crop_reduce"]),
        ),
        from_frames=None if opts["from_frames"] is None else str(opts["from_frames"]),
        from_flow=None if opts["from_flow"] is None else str(opts["from_flow"]),
        flow_clip=float(opts["flow_clip"]),
        batch_size=int(opts["batch_size"]),
        precision=str(opts["precision"]),
        feature_dtype=str(opts["feature_dtype"]),
        keep_spatial=bool(opts["keep_spatial"]),
        motion_maps=bool(opts["motion_maps"]),
        gpus_per_worker=float(gpus),
        threads=opt_int("threads"),
    )  # fmt: skip


@app.command("features")
@handle_errors
@run_options
def features(
    input: InputArg,
    output: OutputOpt,
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="Backbone name (vfx.models.list_models()); repeat for two-stream, e.g. --model i3d_rgb --model i3d_flow.")] = None,
    weights: Annotated[Optional[list[str]], typer.Option("--weights", "-w", help="Checkpoint per model, in --model order or as NAME=PATH. None: random init (testing only).")] = None,
    recipe: RecipeOpt = None,
    dataset: DatasetOpt = None,
    split: SplitOpt = None,
    root: RootOpt = None,
    from_frames: Annotated[Optional[Path], typer.Option("--from-frames", help="Read RGB frames from this frames store instead of decoding the videos.")] = None,
    from_flow: Annotated[Optional[Path], typer.Option("--from-flow", help="Flow store for flow models (vfx extract-flow).")] = None,
    clip_len: Annotated[Optional[int], typer.Option("--clip-len", help="Frames per clip (default: the model's, e.g. 64 for I3D).")] = None,
    stride: Annotated[Optional[int], typer.Option("--stride", help="Start a clip every S frames (default: back to back).")] = None,
    num_clips: Annotated[Optional[int], typer.Option("--num-clips", help="N clips spread uniformly over each video.")] = None,
    segments: Annotated[Optional[int], typer.Option("--segments", help="One clip of K TSN segments per video (TSM/MSNet default: 8).")] = None,
    frame_step: Annotated[Optional[int], typer.Option("--frame-step", help="Take every n-th frame inside a clip (default: the model's, e.g. 8 for i3d_r50 8x8).")] = None,
    short_side: Annotated[Optional[int], typer.Option("--short-side", help="Resize the short side to this (default: the model's, 256 or 128 for 112-pixel models).")] = None,
    crop: Annotated[Optional[str], typer.Option("--crop", help="center, three or ten crops per clip.")] = None,
    crop_size: Annotated[Optional[int], typer.Option("--crop-size", help="Crop side (default: the model's, 224).")] = None,
    crop_reduce: Annotated[Optional[str], typer.Option("--crop-reduce", help="mean: average the crops' features; keep: also store them per crop.")] = None,
    gpus_per_worker: Annotated[Optional[float], typer.Option("--gpus-per-worker", help="GPUs per worker, fractional allowed; 0 runs on CPU (default: 1 if CUDA is available, else 0).")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Torch threads per worker (default: cores / workers).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Clips per forward pass, across videos (default 8).")] = None,
    precision: Annotated[Optional[str], typer.Option("--precision", help="fp32, fp16 or bf16 (autocast).")] = None,
    feature_dtype: Annotated[Optional[str], typer.Option("--feature-dtype", help="Stored dtype: float32 or float16.")] = None,
    keep_spatial: Annotated[Optional[bool], typer.Option("--keep-spatial", help="Also store the feature maps before pooling.")] = None,
    motion_maps: Annotated[Optional[bool], typer.Option("--motion-maps", help="MSNet: also store displacement and confidence maps.")] = None,
    *,
    run: RunOptions,
) -> None:
    """Per-clip features of a named backbone into a features store (two-stream: several --model)."""
    from vfx.features.extract import extract_features, load_feature_items, prepare_features

    cli = dict(
        model=model or None, weights=weights or None, from_frames=from_frames, from_flow=from_flow,
        clip_len=clip_len, stride=stride, num_clips=num_clips, segments=segments, frame_step=frame_step,
        short_side=short_side, crop=crop, crop_size=crop_size, crop_reduce=crop_reduce, batch_size=batch_size,
        precision=precision, feature_dtype=feature_dtype, keep_spatial=keep_spatial, motion_maps=motion_maps,
        gpus_per_worker=gpus_per_worker, threads=threads,
    )  # fmt: skip
    recipe_opts = load_recipe(recipe, "features") if recipe else {}
    if any(cli[k] is not None for k in ("stride", "num_clips", "segments")):
        # One way to place clips: a flag replaces the recipe's choice instead of clashing with it.
        recipe_opts = {k: v for k, v in recipe_opts.items() if k not in ("stride", "num_clips", "segments")}
    if model:
        recipe_opts.pop("weights", None)
    params = feature_params(merge_options(cli, recipe_opts, DEFAULTS))
    items, params = load_feature_items(input, params, dataset=dataset, split=split, root=root)
    resolved = prepare_features(params, run)
    random = resolved.random_init
    warning = (
        f"WARNING: {', '.join(random)} run with RANDOM weights (no --weights): these features are for testing "
        "only (the store records weights_sha256 = random-init)"
    )
    if random:
        typer.echo(warning, err=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = extract_features(items, output, resolved, run)
    if random:
        typer.echo(warning, err=True)  # again after the progress bar, where it is seen
    _echo_device_note(summary.store)
    finish(summary)


def _echo_device_note(store_path: Path) -> None:
    from vfx.store.reader import open_store

    with open_store(store_path) as store:
        done = store.video_ids()
        note = store.attrs(done[-1]).get("device_note") if done else None
    if note:
        typer.echo(f"note: {note}", err=True)
