"""`vfx features`: videos (or a frames store, and a flow store for flow models) -> per-clip backbone features.

Declares the options; `vfx.extract_features` does the work. The library's warnings (random weights) are shown
as one line before the run and again after the progress bar, where they are seen.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Optional

import typer

from vfx import api
from vfx.cli.app import app, handle_errors
from vfx.cli.common import DatasetOpt, OutputOpt, RecipeOpt, RootOpt, SplitOpt, finish, run_options
from vfx.engine import RunOptions
from vfx.features.params import OPTION_DEFAULTS as D
from vfx.features.params import RandomWeightsWarning


@app.command("features")
@handle_errors
@run_options
def features(
    output: OutputOpt,
    input: Annotated[Optional[str], typer.Argument(help="Video folder, list file or annotation file, or a frames or flow store (or use --from-frames / --from-flow alone: all their videos).")] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="Backbone name (vfx.models.list_models()); repeat for two-stream, e.g. --model i3d_rgb --model i3d_flow.")] = None,
    weights: Annotated[Optional[list[str]], typer.Option("--weights", "-w", help="Checkpoint per model, in --model order or as NAME=PATH. None: random init (testing only).")] = None,
    recipe: RecipeOpt = None,
    dataset: DatasetOpt = None,
    split: SplitOpt = None,
    root: RootOpt = None,
    from_frames: Annotated[Optional[str], typer.Option("--from-frames", help="Read RGB frames from this frames store (a path or URL) instead of decoding the videos.")] = None,
    from_flow: Annotated[Optional[str], typer.Option("--from-flow", help="Flow store for flow models (vfx extract-flow; a path or URL).")] = None,
    clip_len: Annotated[Optional[int], typer.Option("--clip-len", help="Frames per clip (default: the model's, e.g. 64 for I3D).")] = None,
    stride: Annotated[Optional[int], typer.Option("--stride", help="Start a clip every S frames (default: back to back).")] = None,
    num_clips: Annotated[Optional[int], typer.Option("--num-clips", help="N clips spread uniformly over each video.")] = None,
    segments: Annotated[Optional[int], typer.Option("--segments", help="One clip of K TSN segments per video (TSM/MSNet default: 8).")] = None,
    frame_step: Annotated[Optional[int], typer.Option("--frame-step", help="Take every n-th frame inside a clip (default: the model's, e.g. 8 for i3d_r50 8x8).")] = None,
    short_side: Annotated[Optional[int], typer.Option("--short-side", help="Resize the short side to this (default: the model's, 256 or 128 for 112-pixel models).")] = None,
    crop: Annotated[Optional[str], typer.Option("--crop", help=f"center, three or ten crops per clip (default {D['crop']}).")] = None,
    crop_size: Annotated[Optional[int], typer.Option("--crop-size", help="Crop side (default: the model's, 224).")] = None,
    crop_reduce: Annotated[Optional[str], typer.Option("--crop-reduce", help=f"mean: average the crops' features; keep: also store them per crop (default {D['crop_reduce']}).")] = None,
    gpus_per_worker: Annotated[Optional[float], typer.Option("--gpus-per-worker", help="GPUs per worker, fractional allowed; 0 runs on CPU (default: 1 if CUDA is available, else 0).")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Torch threads per worker (default: cores / workers).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help=f"Clips per forward pass, across videos (default {D['batch_size']}).")] = None,
    precision: Annotated[Optional[str], typer.Option("--precision", help=f"fp32, fp16 or bf16 (autocast; default {D['precision']}).")] = None,
    feature_dtype: Annotated[Optional[str], typer.Option("--feature-dtype", help=f"Stored dtype: float32 or float16 (default {D['feature_dtype']}).")] = None,
    keep_spatial: Annotated[Optional[bool], typer.Option("--keep-spatial", help="Also store the feature maps before pooling.")] = None,
    motion_maps: Annotated[Optional[bool], typer.Option("--motion-maps", help="MSNet: also store displacement and confidence maps.")] = None,
    *,
    run: RunOptions,
) -> None:
    """Per-clip features of a named backbone into a features store (two-stream: several --model)."""
    arguments = locals()
    with _shown_warnings() as shown:
        summary = api.extract_features(**arguments)
    for message in shown:
        typer.echo(message, err=True)  # again after the progress bar
    _echo_device_note(summary.store)
    finish(summary)


@contextmanager
def _shown_warnings() -> Iterator[list[str]]:
    """Print the library's RandomWeightsWarning as its one-line message (other warnings stay quiet)."""
    shown: list[str] = []

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        shown.append(str(message))
        typer.echo(str(message), err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", RandomWeightsWarning)
        warnings.showwarning = show
        yield shown


def _echo_device_note(store_path: str) -> None:
    from vfx.store.reader import open_store

    with open_store(store_path) as store:
        done = store.video_ids()
        note = store.attrs(done[-1]).get("device_note") if done else None
    if note:
        typer.echo(f"note: {note}", err=True)
