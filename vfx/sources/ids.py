"""Video ids: stable, unique, safe as HDF5 names and file names; and the step that gives rows their final ids.

Rules (`make_video_id`): the file name without its video extension, made safe (ASCII letters, digits,
`.`, `_`, `-`; no leading dot; at most 80 characters before the suffixes). When that had to change the name,
or when two different videos would get the same id (`a/x.mp4`, `b/x.mp4`), an 8-hex-digit SHA-256 of the
original relative path (NFC-normalised, so macOS and Linux agree) is appended. Segment items carry their
times: `<name>_<start>-<end>` with 3 decimals; two segments that still clash (THUMOS14 annotates some
segments as both CliffDiving and Diving) get a hash of path, times and label. A dataset that gains a file
whose name clashes gives both files hashed ids from then on. Items come back sorted by `video_id`.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections import defaultdict
from operator import attrgetter

from vfx.errors import UsageError
from vfx.sources.rows import Row, nfc
from vfx.types import VideoItem

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp"}
)

_ID_MAX_CHARS = 80  # readable part; the hash and segment suffixes come on top (< 120 chars in all)
_HASH_CHARS = 8
_SAFE_CHAR = re.compile(r"[^A-Za-z0-9._-]+")
# Names Windows refuses as files whatever the extension; an id equal to one of these gets a hash suffix.
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}
)


def short_hash(text: str) -> str:
    """First 8 hex digits of SHA-256 of the NFC-normalised UTF-8 text: stable across runs and machines."""
    return hashlib.sha256(nfc(text).encode("utf-8", "surrogateescape")).hexdigest()[:_HASH_CHARS]


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,79}")


def _readable(name: str) -> str:
    """ASCII-only, HDF5- and file-name-safe form of `name` (may be empty)."""
    if _PLAIN_NAME.fullmatch(name) and not name.endswith("."):
        return name  # the common case, e.g. "v_ApplyEyeMakeup_g08_c01": nothing to change
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    # Each run of unsafe characters becomes one "_"; leading dots (hidden files, "..") and trailing dots
    # (Windows drops them) go.
    safe = _SAFE_CHAR.sub("_", ascii_text).strip(".")
    return safe[:_ID_MAX_CHARS].rstrip(".")


def _format_sec(value: float) -> str:
    return f"{value:.3f}"


def segment_suffix(start_sec: float | None, end_sec: float | None) -> str:
    """`_<start>-<end>` (3 decimals, `end` empty when open) for segment items, "" for whole videos."""
    if start_sec is None and end_sec is None:
        return ""
    start = _format_sec(start_sec if start_sec is not None else 0.0)
    end = _format_sec(end_sec) if end_sec is not None else "end"
    return f"_{start}-{end}"


def is_video(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def base_name(path_or_name: str) -> str:
    """Last path component without a video extension (either separator counts)."""
    trimmed = path_or_name.rstrip("/\\")
    last = trimmed[max(trimmed.rfind("/"), trimmed.rfind("\\")) + 1 :]
    stem, ext = os.path.splitext(last)
    return stem if ext.lower() in VIDEO_EXTENSIONS else last


def make_video_id(
    path_or_name: str | os.PathLike,
    *,
    start_sec: float | None = None,
    end_sec: float | None = None,
    force_hash: bool = False,
    hash_key: str | None = None,
) -> str:
    """A stable, HDF5- and file-name-safe id for a video (or a segment of one).

    `path_or_name` is the video's path relative to its dataset (or a bare name): the id is its last
    component without the video extension, e.g. `"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"` →
    `"v_ApplyEyeMakeup_g08_c01"`. If the name had to be changed to be safe (spaces, non-ASCII, leading dots,
    over 80 characters, reserved names) or `force_hash` is set (the caller found a collision), `-<hash>` is
    appended: 8 hex digits of SHA-256 over `hash_key` (default: `path_or_name` as given). Segment times go in
    before the hash: `video_validation_0000051_67.500-75.900`.
    """
    original = os.fspath(path_or_name)
    base = base_name(original)
    readable = _readable(base)
    changed = not readable or readable != base or readable.upper() in _WINDOWS_RESERVED
    if not readable:
        readable = "video"
    video_id = readable + segment_suffix(start_sec, end_sec)
    if changed or force_hash:
        video_id += "-" + short_hash(original if hash_key is None else hash_key)
    return video_id


def is_safe_id(video_id: str) -> bool:
    """True when `video_id` can be used unchanged as an HDF5 name and a file name."""
    return (
        bool(video_id)
        and len(video_id) <= 200
        and _SAFE_CHAR.search(video_id) is None
        and not video_id.startswith(".")
        and not video_id.endswith(".")
        and video_id.upper() not in _WINDOWS_RESERVED
    )


# Any character `is_safe_id` refuses, or a dot at the start or end of an id: over all ids at once, "\n"-joined.
_UNSAFE_IN_JOINED = re.compile(r"[^A-Za-z0-9._\n-]|^\.|\.$", re.MULTILINE)


def all_safe_ids(video_ids: list[str]) -> bool:
    """`all(map(is_safe_id, video_ids))`, a few times faster: one regex pass over the joined ids."""
    if not video_ids:
        return True
    if min(map(len, video_ids)) == 0 or max(map(len, video_ids)) > 200:
        return False
    joined = "\n".join(video_ids)
    if joined.count("\n") != len(video_ids) - 1 or _UNSAFE_IN_JOINED.search(joined):  # an id with a "\n" in it
        return False
    return _WINDOWS_RESERVED.isdisjoint(map(str.upper, video_ids))


def unclashed_ids(rels: list[str], explicit_ids: list[str | None] | None) -> list[str] | None:
    """Ids of whole-video rows by the rules of `assign_ids`, or None when two rows share one.

    The fast way for the user's large list files (no segments, no readable `name`): when no id repeats,
    nothing needs a hash for a clash, and these are the ids `assign_ids` gives. On a clash the caller goes
    through `assign_ids`, which decides what the clash means (a row listed twice, or hashed ids).
    """
    if explicit_ids is not None and None not in explicit_ids and all_safe_ids(explicit_ids):
        ids = explicit_ids
    else:
        explicit = explicit_ids if explicit_ids is not None else [None] * len(rels)
        ids = [make_video_id(rel, hash_key=rel) if given is None else given if is_safe_id(given)
               else make_video_id(given) for rel, given in zip(rels, explicit)]  # fmt: skip
    return ids if len(set(ids)) == len(ids) else None


def _repeated(ids: list[str]) -> set[str]:
    seen: set[str] = set()
    repeated: set[str] = set()
    for video_id in ids:
        if video_id in seen:
            repeated.add(video_id)
        else:
            seen.add(video_id)
    return repeated


def assign_ids(rows: list[Row], *, strict: bool) -> list[VideoItem]:
    """Give every row its final id; see the module docstring for the rules.

    `strict` (the user's own list files): a row listed twice is an error. Official annotations: exact
    duplicates are merged. Explicit `video_id`s are never changed to resolve a clash: a clash is an error.
    """
    if not strict:
        unique: dict[tuple, Row] = {}
        for row in rows:
            unique.setdefault(row.key(), row)
        rows = list(unique.values())

    def readable_id(row: Row, force_hash: bool = False) -> str:
        if row.explicit_id is not None:
            if is_safe_id(row.explicit_id):
                return row.explicit_id
            return make_video_id(row.explicit_id, force_hash=force_hash)
        segment = row.start_sec is not None or row.end_sec is not None
        key = row.rel if not segment else "\x00".join(map(str, row.key()))
        return make_video_id(
            row.name if row.name is not None else row.rel,
            start_sec=row.start_sec if row.name is None else None,
            end_sec=row.end_sec if row.name is None else None,
            force_hash=force_hash,
            hash_key=key,
        )

    ids = [readable_id(row) for row in rows]
    # Clashes are rare: find the ids that repeat with a set (not a list of members for each of 10^6 ids).
    repeated = _repeated(ids)
    groups: dict[str, list[int]] = defaultdict(list)
    if repeated:
        for i, video_id in enumerate(ids):
            if video_id in repeated:
                groups[video_id].append(i)
    for video_id, members in groups.items():
        first_by_key: dict[tuple, Row] = {}
        for i in members:
            row = rows[i]
            first = first_by_key.setdefault(row.key(), row)
            if first is not row:
                raise UsageError(f"{row.where}: duplicate video id {video_id!r} (listed twice; first at {first.where})")
        explicit = [rows[i] for i in members if rows[i].explicit_id is not None]
        if explicit:
            other = next(rows[i] for i in members if rows[i] is not explicit[0])
            raise UsageError(
                f"{explicit[0].where}: duplicate video id {video_id!r} (given to two different videos; "
                f"also {other.where})"
            )
        for i in members:
            ids[i] = readable_id(rows[i], force_hash=True)
    clashing = _repeated(ids) if groups else set()  # after hashing: two different videos whose ids still clash
    first_at: dict[str, int] = {}
    for i, video_id in enumerate(ids if clashing else ()):
        if video_id in clashing:
            if video_id in first_at:
                raise UsageError(
                    f"{rows[i].where}: duplicate video id {video_id!r} (also {rows[first_at[video_id]].where}); "
                    "rename one of the files or give explicit video_id values"
                )
            first_at[video_id] = i
    items = [
        VideoItem(
            video_id=video_id,
            path=row.path,
            label=row.label,
            split=row.split,
            start_sec=row.start_sec,
            end_sec=row.end_sec,
        )
        for video_id, row in zip(ids, rows)
    ]
    return sorted(items, key=attrgetter("video_id"))
