"""Options shared by the commands that run a stage over a dataset, and how their summary becomes an exit code."""

from __future__ import annotations

import inspect
from functools import wraps
from typing import Annotated, Optional

import typer

from vfx.cli.app import EXIT_OK, EXIT_SOME_FAILED
from vfx.engine import RunSummary
from vfx.engine.options import DEFAULT_VIDEO_TIMEOUT_SEC, VIDEO_TIMEOUT_PER_VIDEO_SECOND, RunOptions
from vfx.engine.plan import DEFAULT_SHARD_BYTES

# Typer option declarations reused by extract-frames, extract-flow and features, so the flags read the same.
# Paths that may be URLs are `str`, not `Path`: Path("s3://b/x") is "s3:/b/x", a local folder named "s3:".
# vfx.store.location.Location (stores) and vfx.sources (inputs) decide what a string means.
InputArg = Annotated[str, typer.Argument(help="Video folder, list file (.csv/.tsv/.json), or annotation file/folder with --dataset; or an object-store prefix or video (s3://bucket/videos/).")]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="Store directory to create or resume: a local path or a URL (s3://bucket/prefix/frames.vfx).")]
RecipeOpt = Annotated[Optional[str], typer.Option("--recipe", help="Recipe name (recipes/NAME.toml) or path; flags override it.")]
DatasetOpt = Annotated[Optional[str], typer.Option("--dataset", help="Annotation format: ucf101, hmdb51, kinetics, ssv2, thumos14, activitynet.")]
SplitOpt = Annotated[Optional[int], typer.Option("--split", help="Official split number (UCF101/HMDB51: 1-3).")]
RootOpt = Annotated[Optional[str], typer.Option("--root", help="Folder holding the videos when it is not next to the annotations.")]

_D = RunOptions()  # the defaults every run flag shows and uses

#: The run flags of every command that runs a stage, in the order --help lists them: name -> (annotation, default).
RUN_FLAGS = {
    "workers": (Annotated[Optional[int], typer.Option("--workers", help="Worker processes (default: as many as the cluster's nodes fit: one per CPU, or per GPU share for model stages).")], _D.workers),
    "engine": (Annotated[str, typer.Option("--engine", help="ray (embedded local cluster, or --address) or serial (in-process, for debugging).")], _D.engine),
    "address": (Annotated[Optional[str], typer.Option("--address", help="Join an existing Ray cluster: auto, host:port or ray://host:port (default: RAY_ADDRESS, else a local cluster).")], _D.address),
    "overwrite": (Annotated[bool, typer.Option("--overwrite", help="Replace an existing store made with other parameters.")], _D.overwrite),
    "shard_size": (Annotated[int, typer.Option("--shard-size", help="Videos per shard file at most (a shard is the unit of work and of resume); shards are cut by --shard-mb within this cap, and smaller with several workers so that each gets about eight.")], _D.shard_size),
    "shard_mb": (Annotated[Optional[float], typer.Option("--shard-mb", metavar="MB", help=f"MiB per shard file aimed at, estimated from the shards committed so far (default: the stage's, {DEFAULT_SHARD_BYTES >> 20} MiB).")], _D.shard_mb),
    "retry_failed": (Annotated[bool, typer.Option("--retry-failed", help="Try again the videos an earlier run recorded as failed.")], _D.retry_failed),
    "video_timeout": (Annotated[Optional[float], typer.Option("--video-timeout", metavar="SEC", help=f"A video taking longer is recorded as failed and its worker replaced (default: {DEFAULT_VIDEO_TIMEOUT_SEC:g} s, or {VIDEO_TIMEOUT_PER_VIDEO_SECOND:g} s per second of video where its duration is known).")], _D.video_timeout),
    "progress": (Annotated[bool, typer.Option("--progress/--no-progress", help="Show the progress bar.")], _D.progress),
}


def run_options(command):
    """Add the run flags to a command and hand it one `RunOptions` as its `run` argument instead.

    The shared option group: each command declares only its own options plus `run: RunOptions`, and every
    command that runs a stage gets the same flags, help texts and defaults.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for name, p in signature.parameters.items() if name != "run"]
    flags = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
        for name, (annotation, default) in RUN_FLAGS.items()
    ]

    @wraps(command)
    def wrapper(*args, **kwargs):
        run = RunOptions(**{name: kwargs.pop(name) for name in RUN_FLAGS})
        return command(*args, run=run, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=own + flags)
    wrapper.__annotations__ = {p.name: p.annotation for p in own + flags}
    return wrapper


def finish(summary: RunSummary) -> None:
    """Print the summary line (and failures) and exit 0 when all done, 1 when some videos failed."""
    typer.echo(summary.line())
    if summary.failures:
        for video_id, reason in list(summary.failures.items())[:20]:
            typer.echo(f"  failed {video_id}: {reason}", err=True)
        if len(summary.failures) > 20:
            typer.echo(f"  ... and {len(summary.failures) - 20} more (vfx info {summary.store})", err=True)
        typer.echo(f"{summary.failed} of {summary.total} videos failed", err=True)
    if summary.failed_earlier:
        typer.echo(f"{summary.failed_earlier} videos failed earlier (vfx info lists them); --retry-failed tries "
                   "them again", err=True)
    if not summary.ok:
        raise typer.Exit(EXIT_SOME_FAILED)
    raise typer.Exit(EXIT_OK)
