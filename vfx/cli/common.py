"""Options shared by the commands that run a stage over a dataset, and how their summary becomes an exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfx.cli.app import EXIT_OK, EXIT_SOME_FAILED
from vfx.engine import RunSummary

# Typer option declarations reused by extract-frames, extract-flow and features, so the flags read the same.
InputArg = Annotated[Path, typer.Argument(help="Video folder, list file (.csv/.tsv/.json), or annotation file/folder with --dataset.")]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Store directory to create or resume.")]
RecipeOpt = Annotated[Optional[str], typer.Option("--recipe", help="Recipe name (recipes/NAME.toml) or path; flags override it.")]
DatasetOpt = Annotated[Optional[str], typer.Option("--dataset", help="Annotation format: ucf101, hmdb51, kinetics, ssv2, thumos14, activitynet.")]
SplitOpt = Annotated[Optional[int], typer.Option("--split", help="Official split number (UCF101/HMDB51: 1-3).")]
RootOpt = Annotated[Optional[Path], typer.Option("--root", help="Folder holding the videos when it is not next to the annotations.")]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", help="Worker processes (default: one per CPU, or per GPU for model stages).")]
EngineOpt = Annotated[str, typer.Option("--engine", help="ray (default; embedded local cluster) or serial (in-process, for debugging).")]
AddressOpt = Annotated[Optional[str], typer.Option("--address", help="Join an existing Ray cluster: auto or ray://host:port (default: RAY_ADDRESS, else a local cluster).")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing store made with other parameters.")]
ShardSizeOpt = Annotated[int, typer.Option("--shard-size", help="Videos per shard file at most (the unit of work and of resume); the Ray engine splits further so that every worker gets about eight shards.")]
RetryFailedOpt = Annotated[bool, typer.Option("--retry-failed", help="Try again the videos an earlier run recorded as failed.")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show the progress bar.")]


def finish(summary: RunSummary) -> None:
    """Print the summary line (and failures) and exit 0 when all done, 1 when some videos failed."""
    typer.echo(summary.line())
    if summary.failures:
        for video_id, reason in list(summary.failures.items())[:20]:
            typer.echo(f"  failed {video_id}: {reason}", err=True)
        if len(summary.failures) > 20:
            typer.echo(f"  ... and {len(summary.failures) - 20} more (vfx info {summary.store})", err=True)
        typer.echo(f"{summary.failed} of {summary.total} videos failed", err=True)
        raise typer.Exit(EXIT_SOME_FAILED)
    raise typer.Exit(EXIT_OK)
