"""`vfx extract-flow`: videos or a frames store -> flow store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfx.cli.app import app, handle_errors
from vfx.cli.common import (
    DatasetOpt,
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

#: What `extract-flow` uses where neither the command line nor a recipe says (TV-L1 parameters: the preset's).
DEFAULTS = {
    "backend": "opencv", "preset": "opencv", "device": "auto", "batch_size": 16, "size": None, "short_side": None,
    "step": 1, "bound": 20.0, "format": "uint8", "jpeg_quality": 95, "tau": None, "lambda": None, "theta": None,
    "nscales": None, "warps": None, "epsilon": None, "inner_iterations": None, "outer_iterations": None,
    "scale_step": None, "gamma": None, "median_filtering": None,
}  # fmt: skip


def _opt(flag: str, help: str):
    return typer.Option(flag, help=help)


@app.command("extract-flow")
@handle_errors
@run_options
def extract_flow(
    output: OutputOpt,
    input: Annotated[Optional[Path], typer.Argument(help="Video folder, list file or annotation file (or use --from-frames).")] = None,
    from_frames: Annotated[Optional[Path], _opt("--from-frames", "Compute flow on exactly the frames of this frames store.")] = None,
    dataset: DatasetOpt = None,
    split: SplitOpt = None,
    root: RootOpt = None,
    recipe: RecipeOpt = None,
    backend: Annotated[Optional[str], _opt("--backend", "opencv (cv2 TV-L1, exact; default), torch (our batched TV-L1; GPU when present), farneback or dis (fast, not TV-L1).")] = None,
    preset: Annotated[Optional[str], _opt("--preset", "TV-L1 preset: opencv (its defaults; default) or denseflow (300 iterations, no median, as denseflow/TSN).")] = None,
    device: Annotated[Optional[str], _opt("--device", "auto (default), cpu or cuda (torch backend).")] = None,
    batch_size: Annotated[Optional[int], _opt("--batch-size", "Frame pairs per batch (torch backend; default 16).")] = None,
    size: Annotated[Optional[str], _opt("--size", "Resize to WxH before flow, e.g. 340x256.")] = None,
    short_side: Annotated[Optional[int], _opt("--short-side", "Resize so the short side is this long (default 256 for videos; frames stores keep their size).")] = None,
    step: Annotated[Optional[int], _opt("--step", "Flow between frame k and k+step (default 1).")] = None,
    bound: Annotated[Optional[float], _opt("--bound", "Quantisation bound in pixels (uint8/jpeg; default 20).")] = None,
    format: Annotated[Optional[str], _opt("--format", "uint8 (default), jpeg (one grayscale JPEG per component, TSN loaders) or float16.")] = None,
    jpeg_quality: Annotated[Optional[int], _opt("--jpeg-quality", "JPEG quality for --format jpeg (default 95).")] = None,
    tau: Annotated[Optional[float], _opt("--tau", "TV-L1 time step.")] = None,
    lambda_: Annotated[Optional[float], _opt("--lambda", "TV-L1 data term weight.")] = None,
    theta: Annotated[Optional[float], _opt("--theta", "TV-L1 coupling.")] = None,
    nscales: Annotated[Optional[int], _opt("--nscales", "TV-L1 pyramid levels.")] = None,
    warps: Annotated[Optional[int], _opt("--warps", "TV-L1 warpings per level.")] = None,
    epsilon: Annotated[Optional[float], _opt("--epsilon", "TV-L1 stopping threshold.")] = None,
    inner_iterations: Annotated[Optional[int], _opt("--inner-iterations", "TV-L1 inner iterations.")] = None,
    outer_iterations: Annotated[Optional[int], _opt("--outer-iterations", "TV-L1 outer iterations.")] = None,
    scale_step: Annotated[Optional[float], _opt("--scale-step", "TV-L1 pyramid scale step.")] = None,
    gamma: Annotated[Optional[float], _opt("--gamma", "TV-L1 illumination term (opencv backend only).")] = None,
    median_filtering: Annotated[Optional[int], _opt("--median-filtering", "TV-L1 median kernel: 5, 3, or 1 (off).")] = None,
    *,
    run: RunOptions,
) -> None:
    """Compute optical flow for every video (or every video of a frames store) into a flow store."""
    from vfx.engine import run_stage
    from vfx.flow.params import tvl1_preset
    from vfx.flow.stage import FlowParams, FlowStage, items_from_frames_store
    from vfx.image import parse_size
    from vfx.sources import load_items

    if input is None and from_frames is None:
        raise UsageError("give INPUT (videos), --from-frames STORE, or both")
    if size is not None and short_side is not None:
        raise UsageError("choose either --size or --short-side, not both")
    cli = dict(backend=backend, preset=preset, device=device, batch_size=batch_size, size=size, short_side=short_side,
               step=step, bound=bound, format=format, jpeg_quality=jpeg_quality, tau=tau, theta=theta,
               nscales=nscales, warps=warps, epsilon=epsilon, inner_iterations=inner_iterations,
               outer_iterations=outer_iterations, scale_step=scale_step, gamma=gamma, median_filtering=median_filtering)
    cli["lambda"] = lambda_
    recipe_opts = load_recipe(recipe, "extract-flow") if recipe else {}
    if size is not None or short_side is not None:  # a size flag replaces the recipe's size, whichever kind
        recipe_opts = {k: v for k, v in recipe_opts.items() if k not in ("size", "short_side")}
    o = merge_options(cli, recipe_opts, DEFAULTS)
    tvl1 = tvl1_preset(o["preset"], tau=o["tau"], lambda_=o["lambda"], theta=o["theta"], nscales=o["nscales"],
                       warps=o["warps"], epsilon=o["epsilon"], inner_iterations=o["inner_iterations"],
                       outer_iterations=o["outer_iterations"], scale_step=o["scale_step"], gamma=o["gamma"],
                       median_filtering=o["median_filtering"])
    # Videos are resized to short side 256 unless told otherwise; a frames store's frames keep their size.
    default_short = None if from_frames is not None else 256
    params = FlowParams(
        backend=o["backend"], preset=o["preset"], tvl1=tvl1,
        size=parse_size(str(o["size"])) if o["size"] else None,
        short_side=o["short_side"] if o["short_side"] is not None else (None if o["size"] else default_short),
        step=o["step"], bound=float(o["bound"]), format=o["format"], jpeg_quality=o["jpeg_quality"],
        device=o["device"], batch_size=o["batch_size"],
        from_frames=str(from_frames.resolve()) if from_frames is not None else None,
    )
    if params.backend == "torch" and tvl1.gamma != 0:
        raise UsageError("--gamma is only implemented by --backend opencv")
    if from_frames is not None:
        items = items_from_frames_store(from_frames)
        if input is not None:
            # INPUT names the dataset; flow is computed on the stored frames of those of its videos the store holds.
            wanted = {item.video_id for item in load_items(input, dataset=dataset, split=split, root=root)}
            items = [item for item in items if item.video_id in wanted]
            if not items:
                raise UsageError(f"{from_frames}: the frames store holds none of the videos of {input}")
    else:
        items = load_items(input, dataset=dataset, split=split, root=root)
    summary = run_stage(FlowStage(params), items, output, run)
    finish(summary)

