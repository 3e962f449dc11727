"""Types shared by every layer: what a run is given (`VideoItem`) and what a stage returns (`VideoOutput`).

They live below sources, store and engine so that each of those can import them without importing the
others (see "How a run works" in the README for the import rule).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class VideoItem:
    """One unit of work: a video file, or a [start_sec, end_sec] segment of one.

    Slotted: a run of 10^6 videos holds 10^6 of them in the driver (64 bytes each plus the strings, instead of
    ~170 with a per-instance dict).

    `video_id` is stable across runs, unique within a dataset and safe as an HDF5 name and a file name.
    """

    video_id: str
    path: str
    label: str | None = None
    split: str | None = None
    start_sec: float | None = None
    end_sec: float | None = None


class VideoItems(Sequence):
    """Whole-video items held as columns, sorted by `video_id` with no id twice: what `load_items` gives for a
    list file (segments, with their times, come as `VideoItem`s).

    A 10^6-row list as 10^6 `VideoItem`s is ~2 s of object creation and ~200 MiB of driver memory; as columns
    it is a few lists of strings (labels and splits shared), and a run that finds most ids already in the
    store builds `VideoItem`s only for the rest (`take`). Indexing and iterating give `VideoItem`s, so code
    that takes a `Sequence[VideoItem]` takes this as it is.
    """

    __slots__ = ("video_ids", "paths", "labels", "splits")

    def __init__(self, video_ids: list[str], paths: list[str], labels: list | None = None, splits: list | None = None):
        n = len(video_ids)
        if any(column is not None and len(column) != n for column in (paths, labels, splits)):
            raise ValueError("VideoItems: columns of different lengths")
        if not all(map(str.__lt__, video_ids, islice(video_ids, 1, None))):  # strictly increasing, in C
            raise ValueError("VideoItems: video_ids must be sorted and unique")
        self.video_ids, self.paths, self.labels, self.splits = video_ids, paths, labels, splits

    def __len__(self) -> int:
        return len(self.video_ids)

    def _item(self, i: int) -> VideoItem:
        return VideoItem(self.video_ids[i], self.paths[i], None if self.labels is None else self.labels[i],
                         None if self.splits is None else self.splits[i])

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._item(i) for i in range(*index.indices(len(self)))]
        return self._item(range(len(self))[index])  # negative indices and IndexError as a list gives them

    def take(self, indices) -> list[VideoItem]:
        """The items at `indices` (ints, in the order given)."""
        return [self._item(int(i)) for i in indices]

    def __eq__(self, other) -> bool:
        if isinstance(other, (VideoItems, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        shown = ", ".join(repr(item) for item in self[:2])
        return f"VideoItems({len(self)} items: {shown}{', ...' if len(self) > 2 else ''})"


@dataclass
class VideoOutput:
    """What a stage returns for one video, written under `/videos/<video_id>/` of the shard file.

    `datasets` are written whole. `stream`, when given, yields dicts of arrays that are appended along axis 0
    to resizable datasets of those names, so that a long video never sits in memory whole; an exception
    raised while iterating it fails the video and the writer discards the video's group.
    `attrs` (str, numbers, lists of them) become HDF5 attributes of the group.
    """

    datasets: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    stream: Iterator[dict[str, np.ndarray]] | None = None
