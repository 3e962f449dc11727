"""`vfx extract-frames`: videos -> frames store."""

from __future__ import annotations

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
from vfx.engine import RunOptions, run_stage
from vfx.frames import FrameParams, FramesStage, size_notice
from vfx.image import Resize, parse_size
from vfx.recipes import load_recipe, merge_options
from vfx.sampling import Sampling
from vfx.sources import load_items

DEFAULTS = {
    "short_side": 256,
    "size": None,
    "keep_size": False,
    "upscale": False,
    "interpolation": "linear",
    "crop": None,
    "fps": None,
    "every": None,
    "segments": None,
    "segment_pick": "center",
    "seed": 0,
    "format": "jpeg",
    "quality": 95,
}


def frame_params(opts: dict) -> FrameParams:
    """FrameParams from merged options (command line over recipe over DEFAULTS)."""
    sampling = Sampling.from_options(
        fps=opts["fps"], every=opts["every"], segments=opts["segments"],
        segment_pick=opts["segment_pick"], seed=opts["seed"],
    )
    size = opts["size"]
    if isinstance(size, str):
        size = parse_size(size)
    elif size is not None:
        size = tuple(size)
    if opts["keep_size"]:
        resize = Resize(upscale=opts["upscale"], interpolation=opts["interpolation"])
    elif size is not None:
        resize = Resize(size=size, upscale=opts["upscale"], interpolation=opts["interpolation"])
    else:
        resize = Resize(short_side=int(opts["short_side"]), upscale=opts["upscale"], interpolation=opts["interpolation"])
    crop = opts["crop"]
    if isinstance(crop, str):
        crop = parse_size(crop)
    elif crop is not None:
        crop = tuple(crop)
    return FrameParams(sampling=sampling, resize=resize, crop=crop, format=opts["format"], quality=int(opts["quality"]))


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
    short_side: Annotated[Optional[int], typer.Option("--short-side", help="Resize so the short side is this long (default 256).")] = None,
    size: Annotated[Optional[str], typer.Option("--size", help="Resize to exactly WxH, e.g. 340x256.")] = None,
    keep_size: Annotated[Optional[bool], typer.Option("--keep-size", help="Keep the source size.")] = None,
    upscale: Annotated[Optional[bool], typer.Option("--upscale", help="Also enlarge videos whose short side is under --short-side (--size is always exact).")] = None,
    interpolation: Annotated[Optional[str], typer.Option("--interpolation", help="linear (OpenCV bilinear, as denseflow and mmcv; default), area, cubic, or decoder (FFmpeg bicubic while decoding, as ffmpeg -vf scale).")] = None,
    crop: Annotated[Optional[str], typer.Option("--crop", help="Centre crop WxH after resizing, e.g. 224x224.")] = None,
    fps: Annotated[Optional[float], typer.Option("--fps", help="Sample at this frame rate (by timestamps; right for variable frame rate).")] = None,
    every: Annotated[Optional[int], typer.Option("--every", help="Keep every N-th frame.")] = None,
    segments: Annotated[Optional[int], typer.Option("--segments", help="TSN: K segments, one frame each.")] = None,
    segment_pick: Annotated[Optional[str], typer.Option("--segment-pick", help="center or random frame per segment.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of random segment picks.")] = None,
    format: Annotated[Optional[str], typer.Option("--format", help="jpeg (default) or raw uint8.")] = None,
    quality: Annotated[Optional[int], typer.Option("--quality", help="JPEG quality 1-100 (default 95).")] = None,
    *,
    run: RunOptions,
) -> None:
    """Decode videos and store their (sampled, resized) frames as JPEG bytes or raw uint8."""
    cli = dict(short_side=short_side, size=size, keep_size=keep_size, upscale=upscale, interpolation=interpolation, crop=crop, fps=fps,
               every=every, segments=segments, segment_pick=segment_pick, seed=seed, format=format, quality=quality)
    if size is not None or keep_size:
        cli["short_side"] = None  # an explicit size beats a recipe's short side, and vice versa below
    recipe_opts = load_recipe(recipe, "extract-frames") if recipe else {}
    if short_side is not None:
        recipe_opts = {k: v for k, v in recipe_opts.items() if k not in ("size", "keep_size")}
    params = frame_params(merge_options(cli, recipe_opts, DEFAULTS))
    items = load_items(input, dataset=dataset, split=split, root=root)
    notice = size_notice(params, items)
    if notice:
        typer.echo(notice)
    summary = run_stage(FramesStage(params), items, output, run)
    finish(summary)
