"""`export_store`: write a store's videos in another tool's layout, resumably and in parallel.

Progress lives in `DIR/.vfx-export/{kind}-{format}.json` (what is exported: store, its parameter hash,
format options) and `...jsonl` (one line per finished video, appended by the driver after the video's files
were all renamed into place). A rerun skips the videos in the log; a video whose files were half written when
the run was killed is not in the log and is written again. The export-wide files (lists, JSON) are rewritten
at the end of every run from the log. Per-video work runs in a pool of local processes (`workers`), each
opening the store itself; `workers=1` runs in-process.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from vfx.errors import UsageError, VfxError
from vfx.export.base import REGISTRY, ExportFormat, remove_leftovers, write_json

STATE_DIR = ".vfx-export"
_SAFE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
# What a video's export may raise and still let the run go on (HDF5 read errors surface as OSError/KeyError).
_PER_VIDEO_ERRORS = (VfxError, OSError, KeyError, ValueError)


@dataclass
class ExportSummary:
    output: Path
    format: str
    total: int
    done: int = 0
    skipped: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def line(self) -> str:
        return (f"export {self.format}: {self.done} written, {self.skipped} already exported, {self.failed} failed "
                f"of {self.total} videos -> {self.output}")


def export_store(
    store: str | os.PathLike,
    out: str | os.PathLike,
    to: str,
    *,
    videos: Iterable[str] | None = None,
    split: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> ExportSummary:
    """Export the done videos of `store` (those in `videos` / of `split` when given) to `out` as `to`
    (`actionformer`, `bmn`, `rawframes`, `npy`); format options (`rows` for bmn) as keywords."""
    from vfx.store.reader import open_store

    if to not in REGISTRY:
        raise UsageError(f"unknown export format {to!r}; choose one of {', '.join(sorted(REGISTRY))}")
    fmt: ExportFormat = REGISTRY[to](**options)
    out = Path(out)
    with open_store(store) as s:
        fmt.check(s)
        ids = select_videos(s, videos, split)
        state = _State.open(out, s, fmt, overwrite)
        todo = [v for v in ids if v not in state.records]
        summary = ExportSummary(out, to, total=len(ids), skipped=len(ids) - len(todo))
        if log and summary.skipped:
            log(f"{summary.skipped} of {len(ids)} videos already exported in {out}")
        for video_id, result in _run(s, fmt, todo, out, workers, progress):
            if isinstance(result, Exception):
                summary.failures[video_id] = str(result)
            else:
                state.add(video_id, result)
                summary.done += 1
        state.close()
        chosen = {v: state.records[v] for v in ids if v in state.records}
        summary.notes = fmt.finish(s, chosen, out)
    return summary


def select_videos(store, videos: Iterable[str] | None, split: str | None) -> list[str]:
    done = store.video_ids()
    if videos is not None:
        wanted = list(dict.fromkeys(videos))
        missing = [v for v in wanted if v not in store]
        if missing:
            raise UsageError(f"{store.path}: no done video {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        done = sorted(wanted)
    if split is not None:
        done = [v for v in done if str(store.attrs(v).get("split") or "") == split]
        if not done:
            raise UsageError(f"{store.path}: no done video has split {split!r}")
    for v in done:
        if not _SAFE_ID.fullmatch(v):
            raise UsageError(f"{store.path}: video id {v!r} is not safe as a file name")
    return done


class _State:
    """The export's manifest and done log in `out/.vfx-export/`."""

    def __init__(self, folder: Path, stem: str, records: dict[str, dict]):
        self.log_path = folder / f"{stem}.jsonl"
        self.records = records
        self._log = open(self.log_path, "a")

    @classmethod
    def open(cls, out: Path, store, fmt: ExportFormat, overwrite: bool) -> _State:
        folder = out / STATE_DIR
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{out}: cannot create the export folder ({exc.strerror})") from None
        remove_leftovers(out)
        stem = f"{store.kind}-{fmt.name}"
        manifest = {"format": fmt.name, "options": fmt.options, "store": str(Path(store.path).resolve()),
                    "store_params_hash": store.manifest.get("params_hash")}
        path = folder / f"{stem}.json"
        records: dict[str, dict] = {}
        if path.exists() and not overwrite:
            old = json.loads(path.read_text())
            diff = [k for k in manifest if old.get(k) != manifest[k]]
            if diff:
                raise UsageError(
                    f"{out}: holds a {fmt.name} export of {old.get('store')} with other "
                    f"{', '.join(diff)}; pass --overwrite or pick another -o"
                )
            records = _read_log(folder / f"{stem}.jsonl")
        else:
            (folder / f"{stem}.jsonl").unlink(missing_ok=True)
            write_json(path, manifest)
        return cls(folder, stem, records)

    def add(self, video_id: str, record: dict) -> None:
        self.records[video_id] = record
        self._log.write(json.dumps({"video_id": video_id, **record}) + "\n")
        self._log.flush()
        os.fsync(self._log.fileno())

    def close(self) -> None:
        self._log.close()


def _read_log(path: Path) -> dict[str, dict]:
    records = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a killed run may be cut short: that video is redone
            records[entry.pop("video_id")] = entry
    return records


def _run(store, fmt: ExportFormat, todo: list[str], out: Path, workers: int | None, progress: bool):
    """Yield (video_id, record or the exception) as videos finish."""
    store_path = str(store.path)
    from tqdm import tqdm

    workers = min(workers or min(os.cpu_count() or 1, 8), max(1, len(todo)))
    bar = tqdm(total=len(todo), desc=f"export {fmt.name}", unit="video", disable=not progress)
    try:
        if workers <= 1:
            for video_id in todo:
                yield video_id, _write_one(store, fmt, video_id, out)
                bar.update()
            return
        # spawn: workers open the store themselves and never inherit the driver's HDF5 handles.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            pending = {pool.submit(_export_one, store_path, fmt, v, out): v for v in todo[: 4 * workers]}
            queue = iter(todo[4 * workers :])
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    video_id = pending.pop(future)
                    yield video_id, future.result()
                    bar.update()
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending[pool.submit(_export_one, store_path, fmt, nxt, out)] = nxt
    finally:
        bar.close()


_STORES: dict[str, Any] = {}


def _export_one(store_path: str, fmt: ExportFormat, video_id: str, out: Path):
    """In a pool process: the store is opened once per process and kept for its next videos."""
    from vfx.store.reader import open_store

    if store_path not in _STORES:
        _STORES[store_path] = open_store(store_path)
    return _write_one(_STORES[store_path], fmt, video_id, out)


def _write_one(store, fmt: ExportFormat, video_id: str, out: Path):
    try:
        return fmt.write_video(store, video_id, out)
    except _PER_VIDEO_ERRORS as exc:
        return VfxError(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc))
