"""`Row`: one listed video before its id is final, and the field parsing every format shares."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from vfx.errors import UsageError

# Split spellings of the official annotations and of users' lists, and what they become.
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validate": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@dataclass(frozen=True, slots=True)
class Row:
    """An item before its id is final. `rel` is the original path/name the id and its hash derive from."""

    rel: str
    path: str
    where: str  # "list.csv line 7": for error messages
    label: str | None = None
    split: str | None = None
    start_sec: float | None = None
    end_sec: float | None = None
    explicit_id: str | None = None
    name: str | None = None  # readable base for the id when it is not the file name (Kinetics, SSv2)

    def key(self) -> tuple:
        return (nfc(self.rel), self.start_sec, self.end_sec, self.label)


def normalise_split(value: str | None) -> str | None:
    """"training"/"validation"/"testing" (any case) → "train"/"val"/"test"; other values stay as given."""
    if value is None:
        return None
    return SPLIT_NAMES.get(value.lower(), value)


def split_from_name(name: str) -> str | None:
    """The split a file name says (`kinetics400_val.csv` → "val"), or None."""
    for token in re.split(r"[^a-z]+", name.lower()):
        if token in SPLIT_NAMES:
            return SPLIT_NAMES[token]
    return None


def parse_seconds(value, where: str, field: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise UsageError(f"{where}: {field} must be a number of seconds, got {value!r}")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {field} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise UsageError(f"{where}: {field} must be a finite number >= 0, got {value!r}")
    return seconds


def optional_text(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def clamp_segment(start: float, end: float) -> tuple[float, float] | None:
    """Official annotations as published: clamp a negative start, drop empty segments."""
    start = max(start, 0.0)
    return (start, end) if end > start else None
