"""`vfx show STORE [VIDEO_ID] -o out.png|gif|mp4`: a stored video drawn with every panel labelled."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vfx.cli.app import app, handle_errors


@app.command("show")
@handle_errors
def show(
    store: Annotated[Path, typer.Argument(help="A frames, flow or features (MSNet --motion-maps) store.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="out.png (one row per frame), out.gif or out.mp4 (one frame per shown frame).")],
    video_id: Annotated[Optional[str], typer.Argument(help="Video id inside the store (default: the first).")] = None,
    max_frames: Annotated[Optional[int], typer.Option("--max-frames", help="At most this many frames, fields or frame pairs, evenly spread (default 4 for .png, 32 for .gif/.mp4).")] = None,
    max_flow: Annotated[Optional[float], typer.Option("--max-flow", help="Speed (px) at the rim of the colour wheel (default: the 95th percentile of the shown speeds).")] = None,
) -> None:
    """Frames, colour-coded flow (Middlebury wheel) or MSNet displacement/confidence, each panel captioned."""
    from vfx.show import render

    result = render(store, video_id, output, max_frames=max_frames, max_flow=max_flow)
    if result.note:
        typer.echo(result.note)
    typer.echo(f"wrote {result.path} ({result.frames} frames of {result.video_id})")
