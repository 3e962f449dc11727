"""`vfx export STORE -o DIR --to FORMAT`: a store in the layout another tool reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfx.cli.app import EXIT_OK, EXIT_SOME_FAILED, app, handle_errors
from vfx.export.features_formats import BMN_ROWS


@app.command("export")
@handle_errors
def export(
    store: Annotated[Path, typer.Argument(help="A frames, flow or features store.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write (created; a rerun resumes it).")],
    to: Annotated[str, typer.Option("--to", help="actionformer (also TriDet), bmn (csv_mean_100), rawframes (mmaction2) or npy (video_features).")],
    videos: Annotated[Optional[str], typer.Option("--videos", help="Only these video ids (comma-separated).")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Only the videos of this split (train, val, test, ...).")] = None,
    rows: Annotated[int, typer.Option("--rows", help="bmn: temporal positions per video (BSN/BMN: 100).")] = BMN_ROWS,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Processes (default: one per CPU, at most 8).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start over an export made with other options or another store.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show the progress bar.")] = True,
) -> None:
    """Write every done video of a store as ActionFormer/TriDet .npy, BMN csv, mmaction2 rawframes or video_features .npy."""
    from vfx.export import export_store

    chosen = [v.strip() for v in videos.split(",") if v.strip()] if videos else None
    options = {"rows": rows} if to == "bmn" else {}
    summary = export_store(store, output, to, videos=chosen, split=split, workers=workers, overwrite=overwrite,
                           progress=progress, log=typer.echo, **options)
    for note in summary.notes:
        typer.echo(note)
    typer.echo(summary.line())
    if summary.failures:
        for video_id, reason in list(summary.failures.items())[:20]:
            typer.echo(f"  failed {video_id}: {reason}", err=True)
        raise typer.Exit(EXIT_SOME_FAILED)
    raise typer.Exit(EXIT_OK)
