"""`load_items`: what the user points at (folder, video, list file, official annotation) -> sorted `VideoItem`s."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

from vfx.errors import UsageError
from vfx.sources.files import exists, is_url, usage
from vfx.sources.ids import assign_ids, is_video, unclashed_ids
from vfx.sources.lists import LIST_EXTENSIONS, ListColumns, columns_from_list, rows_from_list
from vfx.sources.registry import canonical_dataset, dataset_format, dataset_names
from vfx.sources.rows import Row
from vfx.sources.walk import rows_from_folder
from vfx.types import VideoItem, VideoItems


def _require_some_exist(paths: Sequence[str], source: Path, root: Path | None) -> None:
    """A root that holds none of the listed videos is a usage error (wrong --root), not N failed videos."""
    if any(map(exists, paths)):
        return
    example = paths[0]
    where = f"under {root}" if root is not None else f"next to {source if source.is_dir() else source.parent}"
    raise usage(
        source,
        f"none of the {len(paths)} listed videos exists {where} (e.g. {example}); pass root= / --root with the "
        "folder that holds the videos",
    )


def _items_from_columns(columns: ListColumns) -> VideoItems | None:
    """The items of a bulk-read list, sorted by id; None when ids clash (`assign_ids` rules on those rows)."""
    ids = unclashed_ids(columns.rels, columns.explicit_ids)
    if ids is None:
        return None
    order = None if all(map(str.__lt__, ids, islice(ids, 1, None))) else sorted(range(len(ids)), key=ids.__getitem__)

    def arranged(column):
        return column if column is None or order is None else [column[i] for i in order]

    return VideoItems(arranged(ids), arranged(columns.paths), arranged(columns.labels), arranged(columns.splits))


def _local_file_url(path):
    """`file:///data/x` is the local path `/data/x`; anything else as given."""
    if isinstance(path, str) and path[:7].lower() == "file://":
        return "/" + path[7:].lstrip("/")
    return path


@contextmanager
def _no_cycle_collection():
    """Python's cycle collector, paused while a list's millions of objects are made.

    They cannot form cycles (rows, strings, items), yet each batch of new objects sets the collector off over a
    growing heap: a 10^6-row list took 3x as long with it. Reference counting still frees what is dropped;
    collection resumes after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_no_cycle_collection()
def load_items(
    input_path: str | Path,
    *,
    dataset: str | None = None,
    split: int | None = None,
    root: str | Path | None = None,
) -> Sequence[VideoItem]:
    """Read a folder, a video, a list file or (with `dataset`) an official annotation file/folder.

    `split` picks the official split number for UCF101 and HMDB51 (1..3, default 1); every item's `split` is
    "train"/"val"/"test" as the annotation says (list files: the value given). `root` is the folder the
    video files are in when they are not next to the list/annotation file. `input_path` may also be an
    object-store URL (`s3://bucket/videos/`: the videos under that prefix, or one video), and a list file's
    rows and `root` may be URLs: the items keep the URLs (the worker downloads each video to scratch).
    Returns items sorted by video_id: a list, or for a plain CSV/TSV list file `VideoItems` (the same items held
    as columns: a 10^6-row list loads in seconds and costs a fraction of the memory).
    Raises `UsageError` (one line: file, line, reason) for anything the user must fix.
    """
    fmt = dataset_format(dataset) if dataset is not None else None
    input_path, root = _local_file_url(input_path), _local_file_url(root)
    # A URL stays a string: Path("s3://b/x") would be the local path "s3:/b/x".
    if isinstance(input_path, str) and is_url(input_path):
        if fmt is not None:
            raise usage(input_path, f"official annotations ({fmt.name}) are read from local disk (the videos of a "
                        "list file may be URLs)")
        from vfx.sources.objects import rows_from_url

        return assign_ids(rows_from_url(input_path), strict=True)
    url_root = isinstance(root, str) and is_url(root)
    # Absolute (symlinks kept as given): the items' paths are recorded in the store as `source_path`, and must
    # mean the same file from wherever the store is read.
    source = Path(input_path).expanduser().absolute()
    root_path = Path(root).expanduser().absolute() if root is not None and not url_root else None
    if not source.exists():
        raise usage(source, "no such file or folder")
    if root_path is not None and not root_path.is_dir():
        raise usage(root_path, "root is not a folder")
    if split is not None and not (fmt and fmt.numbered_splits):
        numbered = [name for name in dataset_names() if dataset_format(name).numbered_splits]
        raise UsageError(f"split={split}: only {' and '.join(numbered)} have numbered splits")
    if not (source.is_dir() or source.is_file()):
        raise usage(source, "not a regular file or folder")

    if fmt is None:
        if source.is_dir():
            return assign_ids(rows_from_folder(source), strict=True)
        if is_video(source.name):
            return assign_ids([Row(rel=source.name, path=str(source), where=str(source))], strict=True)
        if source.suffix.lower() not in LIST_EXTENSIONS:
            raise usage(
                source,
                "not a folder, a video or a list file (.csv .tsv .json .jsonl); for an official annotation "
                f"file pass dataset= ({', '.join(dataset_names())})",
            )
        list_root = root.rstrip("/") if url_root else root_path
        columns = columns_from_list(source, list_root)
        if columns is not None:
            _require_some_exist(columns.paths, source, root_path)
            items = _items_from_columns(columns)
            if items is not None:
                return items
        rows = rows_from_list(source, list_root)
        _require_some_exist([row.path for row in rows], source, root_path)
        return assign_ids(rows, strict=True)

    if url_root:
        raise usage(source, f"{fmt.name} annotations find their videos on local disk; a URL root ({root}) works "
                    "with list files (.csv .tsv .json .jsonl)")
    rows = fmt.parse(source, root_path, split)
    if not rows:
        raise usage(source, f"the {fmt.name} annotation lists no videos")
    _require_some_exist([row.path for row in rows], source, root_path)
    return assign_ids(rows, strict=False)
