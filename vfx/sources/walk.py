"""The folder walker: video files under a folder, as rows (a dataset folder) or by file stem (annotations).

A folder of videos is flat or one subfolder per class: the folder a video sits in is its label; deeper
nesting such as `train/<class>/x.mp4` takes the immediate parent folder. Hidden files and folders (name
starting with ".", e.g. macOS `._x.mp4` forks) are skipped. Every file with a video extension is listed,
whatever its content: a text file named `x.mp4` fails later, per video, when it is decoded.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

from vfx.sources.files import usage
from vfx.sources.ids import VIDEO_EXTENSIONS, is_video
from vfx.sources.rows import Row


def walk_videos(folder: Path) -> Iterator[str]:
    """Paths of the video files under `folder`, recursively, sorted, hidden entries skipped, symlink loops
    avoided."""
    seen: set[str] = set()

    def visit(directory: str) -> Iterator[str]:
        real = os.path.realpath(directory)
        if real in seen:
            return
        seen.add(real)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise usage(directory, f"cannot list folder ({exc.strerror or exc})") from None
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError:
                continue
            if is_dir:
                subdirs.append(entry.path)
            elif is_video(entry.name):
                yield entry.path
        for sub in subdirs:
            yield from visit(sub)

    yield from visit(str(folder))


def rows_from_folder(folder: Path) -> list[Row]:
    rows = []
    prefix = len(os.path.join(str(folder), ""))
    for path in walk_videos(folder):
        rel = path[prefix:].replace(os.sep, "/")
        label = rel.rsplit("/", 2)[-2] if "/" in rel else None
        rows.append(Row(rel=rel, path=path, where=path, label=label))
    if not rows:
        exts = " ".join(sorted(VIDEO_EXTENSIONS))
        raise usage(folder, f"no video files found (looked for {exts}, in subfolders too)")
    return rows


class VideoIndex:
    """Video files under a root, by file stem. Built on first use: one directory walk, however many items."""

    def __init__(self, root: Path):
        self.root = root
        self._by_stem: dict[str, list[str]] | None = None

    def _build(self) -> dict[str, list[str]]:
        by_stem: dict[str, list[str]] = defaultdict(list)
        if self.root.is_dir():
            for path in walk_videos(self.root):
                by_stem[os.path.splitext(os.path.basename(path))[0]].append(path)
        return by_stem

    def nominal(self, *parts: str) -> str:
        """Where a video that is not on disk would be: its path fails later, per video."""
        return os.path.join(str(self.root), *parts)

    def find(self, stems: Iterable[str], prefer_parent: str | None = None) -> tuple[str, str] | None:
        """The first stem that exists, as (path, stem). Several files with that stem: prefer one in a folder
        named `prefer_parent` (the label), then the first in sorted order."""
        if self._by_stem is None:
            self._by_stem = self._build()
        for stem in stems:
            paths = self._by_stem.get(stem)
            if paths:
                for path in paths:
                    if prefer_parent is not None and os.path.basename(os.path.dirname(path)) == prefer_parent:
                        return path, stem
                return paths[0], stem
        return None
