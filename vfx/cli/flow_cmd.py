"""`vfx extract-flow`: videos or a frames store -> flow store. Declares the options; `vfx.extract_flow` does the work."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from vfx import api
from vfx.cli.app import app, handle_errors
from vfx.cli.common import DatasetOpt, OutputOpt, RecipeOpt, RootOpt, SplitOpt, finish, run_options
from vfx.engine import RunOptions
from vfx.flow.params import OPTION_DEFAULTS as D
from vfx.flow.params import TVL1_PRESETS

_TVL1 = TVL1_PRESETS["opencv"]


def _opt(flag: str, help: str):
    return typer.Option(flag, help=help)


def _tvl1(name: str, what: str) -> str:
    return f"TV-L1 {what} (default: the preset's; opencv {getattr(_TVL1, name):g})."


@app.command("extract-flow")
@handle_errors
@run_options
def extract_flow(
    output: OutputOpt,
    input: Annotated[Optional[str], typer.Argument(help="Video folder, list file, annotation file or object-store prefix (or use --from-frames).")] = None,
    from_frames: Annotated[Optional[str], _opt("--from-frames", "Compute flow on exactly the frames of this frames store, a path or URL (all its videos, or those of INPUT).")] = None,
    dataset: DatasetOpt = None,
    split: SplitOpt = None,
    root: RootOpt = None,
    recipe: RecipeOpt = None,
    backend: Annotated[Optional[str], _opt("--backend", f"opencv (cv2 TV-L1, exact), torch (our batched TV-L1; GPU when present), farneback or dis (fast, not TV-L1); default {D['backend']}.")] = None,
    preset: Annotated[Optional[str], _opt("--preset", f"TV-L1 preset: opencv (its defaults) or denseflow (300 iterations, no median, as denseflow/TSN); default {D['preset']}. TV-L1 flags change single values of it.")] = None,
    device: Annotated[Optional[str], _opt("--device", f"auto, cpu or cuda (torch backend; default {D['device']}).")] = None,
    batch_size: Annotated[Optional[int], _opt("--batch-size", f"Frame pairs per batch (torch backend; default {D['batch_size']}).")] = None,
    size: Annotated[Optional[str], _opt("--size", "Resize to WxH before flow, e.g. 340x256.")] = None,
    short_side: Annotated[Optional[int], _opt("--short-side", "Resize so the short side is this long (default 256 for videos; frames stores keep their size).")] = None,
    step: Annotated[Optional[int], _opt("--step", f"Flow between frame k and k+step (default {D['step']}).")] = None,
    bound: Annotated[Optional[float], _opt("--bound", f"Quantisation bound in pixels (uint8/jpeg; default {D['bound']:g}).")] = None,
    format: Annotated[Optional[str], _opt("--format", f"uint8, jpeg (one grayscale JPEG per component, TSN loaders) or float16; default {D['format']}.")] = None,
    jpeg_quality: Annotated[Optional[int], _opt("--jpeg-quality", f"JPEG quality for --format jpeg (default {D['jpeg_quality']}).")] = None,
    tau: Annotated[Optional[float], _opt("--tau", _tvl1("tau", "time step"))] = None,
    lambda_: Annotated[Optional[float], _opt("--lambda", _tvl1("lambda_", "data term weight"))] = None,
    theta: Annotated[Optional[float], _opt("--theta", _tvl1("theta", "coupling"))] = None,
    nscales: Annotated[Optional[int], _opt("--nscales", _tvl1("nscales", "pyramid levels"))] = None,
    warps: Annotated[Optional[int], _opt("--warps", _tvl1("warps", "warpings per level"))] = None,
    epsilon: Annotated[Optional[float], _opt("--epsilon", _tvl1("epsilon", "stopping threshold"))] = None,
    inner_iterations: Annotated[Optional[int], _opt("--inner-iterations", _tvl1("inner_iterations", "inner iterations"))] = None,
    outer_iterations: Annotated[Optional[int], _opt("--outer-iterations", _tvl1("outer_iterations", "outer iterations"))] = None,
    scale_step: Annotated[Optional[float], _opt("--scale-step", _tvl1("scale_step", "pyramid scale step"))] = None,
    gamma: Annotated[Optional[float], _opt("--gamma", _tvl1("gamma", "illumination term, opencv backend only"))] = None,
    median_filtering: Annotated[Optional[int], _opt("--median-filtering", _tvl1("median_filtering", "median kernel: 5, 3, or 1 (off)"))] = None,
    *,
    run: RunOptions,
) -> None:
    """Compute optical flow for every video (or every video of a frames store) into a flow store."""
    finish(api.extract_flow(**locals()))
