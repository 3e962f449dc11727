"""`vfx info STORE`: what a store holds (`--videos`: one row per video; `--json` for scripts)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from vfx.cli.app import app, handle_errors
from vfx.store.reader import open_store

#: What a stored item is called in each kind of store.
UNITS = {"frames": "frames", "flow": "pairs", "features": "clips"}


def video_rows(store) -> list[dict[str, Any]]:
    """One dict per video (done and failed): id, label, split, status, count (frames/pairs/clips), width,
    height, stored bytes, duration, source path, and the failure reason."""
    rows = []
    for video_id in store.video_ids():
        attrs = store.attrs(video_id)
        group = store.group(video_id)
        if store.kind == "frames":
            count = store.num_frames(video_id)
        elif store.kind == "flow":
            count = int(store.flow_pairs(video_id).shape[0])
        else:
            count = int(store.clip_frames(video_id).shape[0])
        rows.append({
            "video_id": video_id, "status": "done", "label": attrs.get("label"), "split": attrs.get("split"),
            UNITS.get(store.kind, "items"): count, "width": attrs.get("width"), "height": attrs.get("height"),
            "stored_bytes": sum(int(ds.id.get_storage_size()) for ds in group.values() if hasattr(ds, "id")),
            "duration_sec": attrs.get("duration_sec"), "source_path": attrs.get("source_path"),
        })
    for video_id, reason in store.failures().items():
        rows.append({"video_id": video_id, "status": "failed", "reason": reason})
    return sorted(rows, key=lambda r: r["video_id"])


def describe_store(path: str | Path, max_failures: int = 50, max_groups: int = 20) -> str:
    with open_store(path) as store:
        m = store.manifest
        rows = video_rows(store)
        done = [r for r in rows if r["status"] == "done"]
        failed = {r["video_id"]: r["reason"] for r in rows if r["status"] == "failed"}
        unit = UNITS.get(store.kind, "items")
        lines = [
            f"store:    {store.path}",
            f"kind:     {store.kind} (schema {m['schema_version']}, vfx {m['vfx_version']}, created {m['created']})",
            f"videos:   {len(done)} done, {len(failed)} failed",
            f"size:     {_human(store.size_bytes())}",
        ]
        if done:
            sizes = sorted({(r["width"], r["height"]) for r in done if r["width"] is not None})
            if sizes:
                by_area = sorted(sizes, key=lambda s: s[0] * s[1])
                lines.append(f"frame size: {_size(by_area[0])}" + (f" .. {_size(by_area[-1])} ({len(sizes)} sizes)" if len(sizes) > 1 else "")
                             + " (as stored)")
            counts = [r[unit] for r in done]
            lines.append(f"{unit}:   {sum(counts)} in all, {min(counts)} .. {max(counts)} per video")
            lines += _counted("splits", Counter(str(r["split"]) for r in done if r["split"] is not None), max_groups)
            lines += _counted("labels", Counter(str(r["label"]) for r in done if r["label"] is not None), max_groups)
        lines.append("params:")
        lines += ["  " + line for line in json.dumps(store.params, indent=2, sort_keys=True, default=str).splitlines()]
        if done:
            first = done[0]["video_id"]
            lines.append(f"example:  /videos/{first}")
            for name, ds in store.group(first).items():
                lines.append(f"  {name:<18} {str(ds.dtype):<8} {list(ds.shape)}")
        if failed:
            lines.append("failures:")
            for video_id, reason in list(failed.items())[:max_failures]:
                lines.append(f"  {video_id}: {reason}")
            if len(failed) > max_failures:
                lines.append(f"  ... and {len(failed) - max_failures} more (vfx info --videos --json lists them all)")
    return "\n".join(lines)


def describe_videos(path: str | Path) -> str:
    with open_store(path) as store:
        rows = video_rows(store)
        unit = UNITS.get(store.kind, "items")
    header = ["video_id", "label", "split", "status", unit, "size", "stored", "duration", "source / reason"]
    table = [header]
    for r in rows:
        if r["status"] == "failed":
            table.append([r["video_id"], "", "", "failed", "", "", "", "", r["reason"]])
            continue
        size = _size((r["width"], r["height"])) if r["width"] is not None else ""
        duration = f"{r['duration_sec']:.2f}s" if r["duration_sec"] is not None else ""
        table.append([r["video_id"], str(r["label"] or ""), str(r["split"] or ""), "done", str(r[unit]), size,
                      _human(r["stored_bytes"]), duration, str(r["source_path"] or "")])
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] for row in table)


def _counted(title: str, counts: Counter, limit: int) -> list[str]:
    if not counts:
        return []
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{k} {v}" for k, v in items[:limit])
    more = f", ... {len(items) - limit} more" if len(items) > limit else ""
    return [f"{title}:   {len(items)}: {shown}{more}"]


def _size(wh) -> str:
    return f"{wh[0]}x{wh[1]}"


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


@app.command("info")
@handle_errors
def info(
    store: Annotated[str, typer.Argument(help="A store made by vfx: a directory, or a URL (s3://bucket/prefix/frames.vfx).")],
    videos: Annotated[bool, typer.Option("--videos", help="One row per video: label, split, status, count, size, stored bytes, duration, source.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --videos: a JSON list of the rows, for scripts.")] = False,
) -> None:
    """Print a store's kind, frame sizes, videos per split and label, parameters, failures (or every video)."""
    if as_json:
        with open_store(store) as s:
            typer.echo(json.dumps(video_rows(s), indent=1, default=str))
    elif videos:
        typer.echo(describe_videos(store))
    else:
        typer.echo(describe_store(store))
