"""What every export format shares: the format interface, atomic file writes, and the registry.

A format writes the files of one video (`write_video`, run in a worker process, may be called again for a
video whose earlier run was killed) and then the files that describe the whole export (`finish`, run once in
the driver from what the per-video calls returned). Every file is written under a temporary name in the
folder it belongs to and renamed into place, so a file with its final name is always complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from vfx.errors import UsageError

TMP_MARK = ".vfx-tmp-"


class ExportFormat:
    """One `--to` target. Subclasses set `name` and `kinds` and implement `write_video` (and `finish`)."""

    name: str = ""
    kinds: tuple[str, ...] = ()  # store kinds it reads

    def __init__(self, **options: Any):
        self.options = options

    def check(self, store) -> None:
        if store.kind not in self.kinds:
            raise UsageError(
                f"{store.path}: --to {self.name} exports {' or '.join(self.kinds)} stores, this one holds {store.kind!r}"
            )

    def write_video(self, store, video_id: str, out: Path) -> dict[str, Any]:  # pragma: no cover - abstract
        """Write the video's files under `out`; return what `finish` needs (JSON-serialisable)."""
        raise TypeError(f"{type(self).__name__} must implement write_video")

    def finish(self, store, records: dict[str, dict[str, Any]], out: Path) -> list[Path]:
        """Write the export-wide files from {video_id: what write_video returned}; returns their paths."""
        return []


REGISTRY: dict[str, type[ExportFormat]] = {}


def register(cls: type[ExportFormat]) -> type[ExportFormat]:
    if cls.name in REGISTRY:
        raise ValueError(f"export format {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def tmp_name(path: Path) -> Path:
    return path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")


def write_bytes(path: Path, data: bytes | np.ndarray) -> None:
    """Write under a temporary name beside `path`, then rename: `path` is either absent or complete."""
    tmp = tmp_name(path)
    with open(tmp, "wb") as f:
        f.write(data.tobytes() if isinstance(data, np.ndarray) else data)
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def write_npy(path: Path, array: np.ndarray) -> None:
    tmp = tmp_name(path)
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def remove_leftovers(folder: Path) -> None:
    """Delete the temporary files a killed run left in `folder` (not recursive)."""
    if folder.is_dir():
        for p in folder.iterdir():
            if TMP_MARK in p.name and p.is_file():
                p.unlink(missing_ok=True)


def model_names(store) -> list[str]:
    """The store's models in the order their features are concatenated."""
    return [m["name"] for m in store.params.get("models", [])]
