"""`vfx info STORE`: what a store holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vfx.cli.app import app, handle_errors
from vfx.store.reader import open_store


def describe_store(path: Path, max_failures: int = 50) -> str:
    store = open_store(path)
    m = store.manifest
    done, failed = store.video_ids(), store.failures()
    lines = [
        f"store:    {store.path}",
        f"kind:     {store.kind} (schema {m['schema_version']}, vfx {m['vfx_version']}, created {m['created']})",
        f"videos:   {len(done)} done, {len(failed)} failed",
        f"size:     {_human(store.size_bytes())}",
        "params:",
    ]
    lines += ["  " + line for line in json.dumps(store.params, indent=2, sort_keys=True, default=str).splitlines()]
    if done:
        first = done[0]
        group = store.group(first)
        lines.append(f"example:  /videos/{first}")
        for name, ds in group.items():
            lines.append(f"  {name:<18} {str(ds.dtype):<8} {list(ds.shape)}")
    if failed:
        lines.append("failures:")
        for video_id, reason in list(failed.items())[:max_failures]:
            lines.append(f"  {video_id}: {reason}")
        if len(failed) > max_failures:
            lines.append(f"  ... and {len(failed) - max_failures} more")
    store.close()
    return "\n".join(lines)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


@app.command("info")
@handle_errors
def info(store: Annotated[Path, typer.Argument(help="A store directory made by vfx.")]) -> None:
    """Print a store's kind, parameters, counts done/failed, size on disk and failures."""
    typer.echo(describe_store(store))
