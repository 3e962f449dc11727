"""`vfx extract-frames`: videos -> frames store. Declares the options; `vfx.extract_frames` does the rest."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from vfx import api
from vfx.cli.app import app, handle_errors
from vfx.cli.common import DatasetOpt, InputArg, OutputOpt, RecipeOpt, RootOpt, SplitOpt, finish, run_options
from vfx.engine import RunOptions
from vfx.frames import OPTION_DEFAULTS as D


@app.command("extract-frames")
@handle_errors
@run_options
def extract_frames(
    input: InputArg,
    output: OutputOpt,
    recipe: RecipeOpt = None,
    dataset: DatasetOpt = None,
    split: SplitOpt = None,
    root: RootOpt = None,
    short_side: Annotated[Optional[int], typer.Option("--short-side", help=f"Resize so the short side is this long (default {D['short_side']}).")] = None,
    size: Annotated[Optional[str], typer.Option("--size", help="Resize to exactly WxH, e.g. 340x256.")] = None,
    keep_size: Annotated[Optional[bool], typer.Option("--keep-size", help="Keep the source size.")] = None,
    upscale: Annotated[Optional[bool], typer.Option("--upscale", help="Also enlarge videos whose short side is under --short-side (--size is always exact).")] = None,
    interpolation: Annotated[Optional[str], typer.Option("--interpolation", help=f"linear (OpenCV bilinear, as denseflow and mmcv), area, cubic, or decoder (FFmpeg bicubic while decoding, as ffmpeg -vf scale); default {D['interpolation']}.")] = None,
    crop: Annotated[Optional[str], typer.Option("--crop", help="Centre crop WxH after resizing, e.g. 224x224.")] = None,
    fps: Annotated[Optional[float], typer.Option("--fps", help="Sample at this frame rate (by timestamps; right for variable frame rate).")] = None,
    every: Annotated[Optional[int], typer.Option("--every", help="Keep every N-th frame.")] = None,
    segments: Annotated[Optional[int], typer.Option("--segments", help="TSN: K segments, one frame each.")] = None,
    segment_pick: Annotated[Optional[str], typer.Option("--segment-pick", help=f"center or random frame per segment (default {D['segment_pick']}).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help=f"Seed of random segment picks (default {D['seed']}).")] = None,
    format: Annotated[Optional[str], typer.Option("--format", help=f"jpeg or raw uint8 (default {D['format']}).")] = None,
    quality: Annotated[Optional[int], typer.Option("--quality", help=f"JPEG quality 1-100 (default {D['quality']}).")] = None,
    *,
    run: RunOptions,
) -> None:
    """Decode videos and store their (sampled, resized) frames as JPEG bytes or raw uint8."""
    finish(api.extract_frames(**locals(), log=typer.echo))
