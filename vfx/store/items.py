"""A store's done videos as `VideoItem`s: the input of a stage that reads a store (flow from frames, features)."""

from __future__ import annotations

import os

from vfx.errors import UsageError
from vfx.store.reader import open_store
from vfx.types import VideoItem


def items_from_store(path: str | os.PathLike, *, kind: str | None = None, flag: str = "the input") -> list[VideoItem]:
    """One item per done video, with its id, label, split, segment and original source path.

    `kind`: the store must hold this ("frames", "flow"); `flag` names the option in messages (`--from-frames`).
    """
    try:
        store = open_store(path)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{path}: cannot open as a vfx store ({exc})") from None
    with store:
        if kind is not None and store.kind != kind:
            raise UsageError(f"{path}: {flag} needs a {kind} store, this one holds {store.kind!r}")
        items = []
        for video_id in store.video_ids():
            attrs = store.attrs(video_id)
            items.append(VideoItem(
                video_id=video_id,
                path=str(attrs.get("source_path", "")),
                label=None if attrs.get("label") is None else str(attrs["label"]),
                split=None if attrs.get("split") is None else str(attrs["split"]),
                start_sec=attrs.get("start_sec"),
                end_sec=attrs.get("end_sec"),
            ))
    if not items:
        raise UsageError(f"{path}: the store has no finished videos")
    return items
