"""Types shared by every layer: what a run is given (`VideoItem`) and what a stage returns (`VideoOutput`).

They live below sources, store and engine so that each of those can import them without importing the
others (see "How a run works" in the README for the import rule).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
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
