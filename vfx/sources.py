"""Turn what the user has (a folder, a list file, an official annotation file) into `VideoItem` rows.

Inputs `load_items` understands:

* a **folder** of videos, flat or one subfolder per class (the folder a video sits in is its label; deeper
  nesting such as `train/<class>/x.mp4` takes the immediate parent folder). Hidden files and folders (name
  starting with ".", e.g. macOS `._x.mp4` forks) are skipped. Every file with a video extension is listed,
  whatever its content: a text file named `x.mp4` fails later, per video, when it is decoded.
* a single **video file**: one item.
* a **list file** `.csv` / `.tsv` (header row) / `.json` (list of objects) / `.jsonl` (one object a line)
  with a `path` column and optional `label`, `split`, `start_sec`, `end_sec`, `video_id`. Other columns are
  ignored; split spellings "training"/"validation"/"testing" become "train"/"val"/"test". Relative paths resolve against `root` when given, else against the list file's folder.
* with `dataset=`, an **official annotation** file or folder: UCF101, HMDB51, Kinetics, Something-Something
  v2, THUMOS14 (per-class temporal annotation txt files) and ActivityNet-style JSON (also ActionFormer's
  `thumos14.json`). `root` is where the videos are; by default the annotation file's folder.

Video ids (`make_video_id`): the file name without its video extension, made safe (ASCII letters, digits,
`.`, `_`, `-`; no leading dot; at most 80 characters before the suffixes). When that had to change the name,
or when two different videos would get the same id (`a/x.mp4`, `b/x.mp4`), an 8-hex-digit SHA-256 of the
original relative path (NFC-normalised, so macOS and Linux agree) is appended. Segment items carry their
times: `<name>_<start>-<end>` with 3 decimals; two segments that still clash (THUMOS14 annotates some
segments as both CliffDiving and Diving) get a hash of path, times and label. A dataset that gains a file
whose name clashes gives both files hashed ids from then on. Items come back sorted by `video_id`.

Official annotation files are taken as published: exact duplicate rows are merged, empty segments
(end <= start) are skipped and negative start times clamped to 0. In the user's own list files the same
things are errors, reported with the line.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vfx.errors import UsageError
from vfx.types import VideoItem


VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp"}
)
LIST_EXTENSIONS = frozenset({".csv", ".tsv", ".json", ".jsonl"})

# Canonical dataset names and the spellings users type for them.
DATASETS = ("ucf101", "hmdb51", "kinetics", "ssv2", "thumos14", "activitynet")
_DATASET_ALIASES = {
    "ucf101": "ucf101",
    "ucf-101": "ucf101",
    "hmdb51": "hmdb51",
    "hmdb": "hmdb51",
    "kinetics": "kinetics",
    "kinetics400": "kinetics",
    "kinetics600": "kinetics",
    "kinetics700": "kinetics",
    "k400": "kinetics",
    "k600": "kinetics",
    "k700": "kinetics",
    "ssv2": "ssv2",
    "sthv2": "ssv2",
    "something-something": "ssv2",
    "something-something-v2": "ssv2",
    "thumos14": "thumos14",
    "thumos": "thumos14",
    "activitynet": "activitynet",
    "anet": "activitynet",
}

_ID_MAX_CHARS = 80  # readable part; the hash and segment suffixes come on top (< 120 chars in all)
_HASH_CHARS = 8
_SAFE_CHAR = re.compile(r"[^A-Za-z0-9._-]+")
# Names Windows refuses as files whatever the extension; an id equal to one of these gets a hash suffix.
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}
)


# --------------------------------------------------------------------------------------------- video ids


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def short_hash(text: str) -> str:
    """First 8 hex digits of SHA-256 of the NFC-normalised UTF-8 text: stable across runs and machines."""
    return hashlib.sha256(_nfc(text).encode("utf-8", "surrogateescape")).hexdigest()[:_HASH_CHARS]


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


def _base_name(path_or_name: str) -> str:
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
    base = _base_name(original)
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


# ------------------------------------------------------------------------------------------- raw rows


@dataclass(frozen=True)
class _Row:
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
        return (_nfc(self.rel), self.start_sec, self.end_sec, self.label)


def _is_video(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def _usage(path: Path | str, reason: str) -> UsageError:
    return UsageError(f"{path}: {reason}")


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _usage(path, f"cannot read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _usage(path, f"not UTF-8 text (byte {exc.start})") from None


# ---------------------------------------------------------------------------------------------- folder


def _walk_videos(folder: Path) -> Iterator[str]:
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
            raise _usage(directory, f"cannot list folder ({exc.strerror or exc})") from None
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
            elif _is_video(entry.name):
                yield entry.path
        for sub in subdirs:
            yield from visit(sub)

    yield from visit(str(folder))


def _rows_from_folder(folder: Path) -> list[_Row]:
    rows = []
    prefix = len(os.path.join(str(folder), ""))
    for path in _walk_videos(folder):
        rel = path[prefix:].replace(os.sep, "/")
        label = rel.rsplit("/", 2)[-2] if "/" in rel else None
        rows.append(_Row(rel=rel, path=path, where=path, label=label))
    if not rows:
        exts = " ".join(sorted(VIDEO_EXTENSIONS))
        raise _usage(folder, f"no video files found (looked for {exts}, in subfolders too)")
    return rows


# ------------------------------------------------------------------------------------------- list files


def _parse_seconds(value, where: str, field: str) -> float | None:
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


def _optional_text(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _row_from_record(record: dict, where: str, base_dir: Path) -> _Row:
    fields = {str(k).strip().lower(): v for k, v in record.items() if k is not None}
    raw_path = fields.get("path")
    if not isinstance(raw_path, str) or not raw_path.strip():
        raise UsageError(f"{where}: missing or empty 'path'")
    raw_path = raw_path.strip()
    start = _parse_seconds(fields.get("start_sec"), where, "start_sec")
    end = _parse_seconds(fields.get("end_sec"), where, "end_sec")
    if start is not None and end is not None and end <= start:
        raise UsageError(f"{where}: end_sec ({end:g}) must be greater than start_sec ({start:g})")
    explicit_id = _optional_text(fields.get("video_id"))
    path = os.path.expanduser(raw_path)
    if not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return _Row(
        rel=raw_path,
        path=path,
        where=where,
        label=_optional_text(fields.get("label")),
        split=_normalise_split(_optional_text(fields.get("split"))),
        start_sec=start,
        end_sec=end,
        explicit_id=explicit_id,
    )


def _rows_from_csv(list_file: Path, base_dir: Path, delimiter: str) -> list[_Row]:
    text = _read_text(list_file)
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise _usage(list_file, f"line 1: malformed header ({exc})") from None
    if not header:
        raise _usage(list_file, "empty list file (expected a header row with a 'path' column)")
    if "path" not in header:
        hint = ""
        if "youtube_id" in header:
            hint = " (this looks like a Kinetics annotation file: pass dataset kinetics)"
        raise _usage(list_file, f"line 1: no 'path' column in header {header}{hint}")
    rows = []
    try:
        for record in reader:
            where = f"{list_file} line {reader.line_num}"
            if None in record:
                raise UsageError(f"{where}: {len(header) + len(record[None])} fields, the header has {len(header)}")
            if all((v is None or not str(v).strip()) for v in record.values()):
                continue
            rows.append(_row_from_record(record, where, base_dir))
    except csv.Error as exc:
        raise _usage(list_file, f"line {reader.line_num}: malformed ({exc})") from None
    return rows


def _json_error(path: Path, exc: json.JSONDecodeError) -> UsageError:
    return _usage(path, f"line {exc.lineno}: invalid JSON ({exc.msg})")


def _rows_from_json(list_file: Path, base_dir: Path) -> list[_Row]:
    text = _read_text(list_file)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _json_error(list_file, exc) from None
    if isinstance(data, dict) and "database" in data:
        raise _usage(list_file, "this is an ActivityNet-style annotation file: pass dataset activitynet or thumos14")
    if not isinstance(data, list):
        raise _usage(list_file, "expected a JSON list of objects with a 'path' key")
    rows = []
    for number, record in enumerate(data, start=1):
        where = f"{list_file} entry {number}"
        if not isinstance(record, dict):
            raise UsageError(f"{where}: expected an object with a 'path' key, got {type(record).__name__}")
        rows.append(_row_from_record(record, where, base_dir))
    return rows


def _rows_from_jsonl(list_file: Path, base_dir: Path) -> list[_Row]:
    rows = []
    for number, line in enumerate(_read_text(list_file).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{list_file} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: invalid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise UsageError(f"{where}: expected an object with a 'path' key, got {type(record).__name__}")
        rows.append(_row_from_record(record, where, base_dir))
    return rows


def _rows_from_list(list_file: Path, root: Path | None) -> list[_Row]:
    base_dir = root if root is not None else list_file.parent
    ext = list_file.suffix.lower()
    if ext == ".csv":
        rows = _rows_from_csv(list_file, base_dir, ",")
    elif ext == ".tsv":
        rows = _rows_from_csv(list_file, base_dir, "\t")
    elif ext == ".json":
        rows = _rows_from_json(list_file, base_dir)
    else:
        rows = _rows_from_jsonl(list_file, base_dir)
    if not rows:
        raise _usage(list_file, "the list has no entries")
    return rows


# ------------------------------------------------------------------------------- finding dataset videos


class _VideoIndex:
    """Video files under a root, by file stem. Built on first use: one directory walk, however many items."""

    def __init__(self, root: Path):
        self.root = root
        self._by_stem: dict[str, list[str]] | None = None

    def _build(self) -> dict[str, list[str]]:
        by_stem: dict[str, list[str]] = defaultdict(list)
        if self.root.is_dir():
            for path in _walk_videos(self.root):
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


def _annotation_files(input_path: Path, pattern: re.Pattern[str], what: str) -> list[Path]:
    """`input_path` itself if it is a file, else the files in that folder whose name matches `pattern`."""
    if input_path.is_file():
        return [input_path]
    files = sorted(p for p in input_path.iterdir() if p.is_file() and pattern.fullmatch(p.name))
    if not files:
        raise _usage(input_path, f"no {what} in this folder")
    return files


def _default_root(input_path: Path, root: Path | None) -> Path:
    if root is not None:
        return root
    return input_path if input_path.is_dir() else input_path.parent


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


def _check_split_number(split: int | None, dataset: str) -> int:
    if split is None:
        return 1
    if split not in (1, 2, 3):
        raise UsageError(f"{dataset}: split must be 1, 2 or 3, got {split}")
    return split


# ----------------------------------------------------------------------------------------------- UCF101


_UCF_LIST = re.compile(r"(train|test)list0?([1-3])\.txt", re.IGNORECASE)


def _ucf_class_index(folder: Path) -> dict[int, str]:
    """classInd.txt: `<1-based index> <ClassName>` per line."""
    path = folder / "classInd.txt"
    if not path.is_file():
        return {}
    classes: dict[int, str] = {}
    for number, line in _lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise UsageError(f"{path} line {number}: expected '<index> <ClassName>', got {line!r}")
        classes[int(parts[0])] = parts[1]
    return classes


def _ucf_label_from_name(rel: str) -> str | None:
    match = re.match(r"v_(.+)_g\d+_c\d+", _base_name(rel))
    return match.group(1) if match else None


def _rows_ucf101(input_path: Path, split: int | None, root: Path | None) -> list[_Row]:
    # Official layout (ucfTrainTestlist/): classInd.txt, trainlist0N.txt lines "Class/v_Class_gGG_cCC.avi K"
    # with K the 1-based class index, testlist0N.txt lines "Class/v_Class_gGG_cCC.avi".
    if input_path.is_file() and not _UCF_LIST.fullmatch(input_path.name):
        if input_path.name.lower() != "classind.txt":
            raise _usage(input_path, "not a UCF101 annotation file (classInd.txt, trainlist0N.txt, testlist0N.txt)")
        input_path = input_path.parent
    folder = input_path if input_path.is_dir() else input_path.parent
    classes = _ucf_class_index(folder)
    if input_path.is_dir():
        number = _check_split_number(split, "ucf101")
        lists = [
            p
            for p in sorted(folder.iterdir())
            if (m := _UCF_LIST.fullmatch(p.name)) and int(m.group(2)) == number
        ]
        if not lists:
            raise _usage(folder, f"no trainlist0{number}.txt or testlist0{number}.txt in this folder")
    else:
        m = _UCF_LIST.fullmatch(input_path.name)
        if split is not None and int(m.group(2)) != _check_split_number(split, "ucf101"):
            raise _usage(input_path, f"this list is split {m.group(2)}, but split {split} was asked for")
        lists = [input_path]
    video_root = _default_root(folder, root)
    index = _VideoIndex(video_root)
    rows = []
    for list_file in lists:
        subset = _UCF_LIST.fullmatch(list_file.name).group(1).lower()
        for number, line in _lines(list_file):
            where = f"{list_file} line {number}"
            parts = line.split()
            if subset == "train" and len(parts) != 2 or subset == "test" and len(parts) not in (1, 2):
                expected = "'<Class>/<video>.avi <class index>'" if subset == "train" else "'<Class>/<video>.avi'"
                raise UsageError(f"{where}: expected {expected}, got {line!r}")
            rel = parts[0].replace("\\", "/")
            folder_label = rel.rsplit("/", 1)[0] if "/" in rel else None
            label = folder_label
            if subset == "train":
                if not parts[1].isdigit():
                    raise UsageError(f"{where}: class index must be a positive integer, got {parts[1]!r}")
                index_label = classes.get(int(parts[1]))
                if classes and index_label is None:
                    raise UsageError(f"{where}: class index {parts[1]} is not in classInd.txt")
                if index_label and folder_label and index_label != folder_label:
                    raise UsageError(
                        f"{where}: class index {parts[1]} is {index_label} in classInd.txt, "
                        f"but the video is in folder {folder_label}"
                    )
                label = label or index_label
            label = label or _ucf_label_from_name(rel)
            path = os.path.join(str(video_root), rel)
            if not os.path.exists(path):
                found = index.find([_base_name(rel)], prefer_parent=label)
                path = found[0] if found else path
            rows.append(_Row(rel=rel, path=path, where=where, label=label, split=subset))
    return rows


# ----------------------------------------------------------------------------------------------- HMDB51


_HMDB_SPLIT = re.compile(r"(.+)_test_split([1-3])\.txt", re.IGNORECASE)
_HMDB_MARKERS = {"0": None, "1": "train", "2": "test"}  # 0: not used in this split (official readme)


def _rows_hmdb51(input_path: Path, split: int | None, root: Path | None) -> list[_Row]:
    # Official split files `<class>_test_split<N>.txt`, lines "<video>.avi <0|1|2>".
    if input_path.is_dir():
        number = _check_split_number(split, "hmdb51")
        files = [
            p
            for p in sorted(input_path.iterdir())
            if (m := _HMDB_SPLIT.fullmatch(p.name)) and int(m.group(2)) == number
        ]
        if not files:
            raise _usage(input_path, f"no HMDB51 split files '<class>_test_split{number}.txt' in this folder")
    else:
        m = _HMDB_SPLIT.fullmatch(input_path.name)
        if not m:
            raise _usage(input_path, "not an HMDB51 split file (named '<class>_test_split<N>.txt')")
        if split is not None and int(m.group(2)) != _check_split_number(split, "hmdb51"):
            raise _usage(input_path, f"this file is split {m.group(2)}, but split {split} was asked for")
        files = [input_path]
    index = _VideoIndex(_default_root(input_path, root))
    rows = []
    for split_file in files:
        label = _HMDB_SPLIT.fullmatch(split_file.name).group(1)
        for number, line in _lines(split_file):
            where = f"{split_file} line {number}"
            parts = line.split()
            if len(parts) != 2 or parts[1] not in _HMDB_MARKERS:
                raise UsageError(f"{where}: expected '<video>.avi <0|1|2>', got {line!r}")
            subset = _HMDB_MARKERS[parts[1]]
            if subset is None:
                continue
            name = parts[0]
            found = index.find([_base_name(name)], prefer_parent=label)
            path = found[0] if found else index.nominal(label, name)
            rows.append(_Row(rel=f"{label}/{name}", path=path, where=where, label=label, split=subset))
    return rows


# --------------------------------------------------------------------------------------------- Kinetics


_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validate": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def _normalise_split(value: str | None) -> str | None:
    """"training"/"validation"/"testing" (any case) → "train"/"val"/"test"; other values stay as given."""
    if value is None:
        return None
    return _SPLIT_NAMES.get(value.lower(), value)


def _split_from_name(name: str) -> str | None:
    lowered = name.lower()
    for token in re.split(r"[^a-z]+", lowered):
        if token in _SPLIT_NAMES:
            return _SPLIT_NAMES[token]
    return None


def _rows_kinetics(input_path: Path, root: Path | None) -> list[_Row]:
    # Official CSV: `label,youtube_id,time_start,time_end,split` (test files may lack `label`; some have
    # `is_cc`). The downloaders name trimmed clips `<youtube_id>_<start:06d>_<end:06d>.mp4`.
    files = _annotation_files(input_path, re.compile(r".+\.csv", re.IGNORECASE), "Kinetics .csv files")
    index = _VideoIndex(_default_root(input_path, root))
    rows = []
    for csv_file in files:
        reader = csv.DictReader(_read_text(csv_file).splitlines())
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = {"youtube_id", "time_start", "time_end"} - set(header)
        if missing:
            raise _usage(csv_file, f"line 1: not a Kinetics CSV, missing columns {sorted(missing)}")
        file_split = _split_from_name(csv_file.stem)
        try:
            for record in reader:
                where = f"{csv_file} line {reader.line_num}"
                fields = {str(k).strip().lower(): (v or "").strip() for k, v in record.items() if k is not None}
                youtube_id = fields["youtube_id"]
                if not youtube_id:
                    raise UsageError(f"{where}: empty youtube_id")
                start = _parse_seconds(fields["time_start"], where, "time_start")
                end = _parse_seconds(fields["time_end"], where, "time_end")
                if start is None or end is None:
                    raise UsageError(f"{where}: time_start and time_end are required")
                clip_name = f"{youtube_id}_{int(start):06d}_{int(end):06d}"
                label = fields.get("label") or None
                raw_split = fields.get("split", "").lower()
                subset = _SPLIT_NAMES.get(raw_split, raw_split or None) or file_split
                found = index.find([clip_name, youtube_id], prefer_parent=label)
                if found is None:
                    path, seg = index.nominal(f"{clip_name}.mp4"), (None, None)
                elif found[1] == clip_name:
                    path, seg = found[0], (None, None)  # already trimmed to the annotated window
                else:
                    path, seg = found[0], (start, end)  # whole YouTube video: restrict to the window
                rows.append(
                    _Row(rel=clip_name, path=path, where=where, label=label, split=subset,
                         start_sec=seg[0], end_sec=seg[1], name=clip_name)
                )
        except csv.Error as exc:
            raise _usage(csv_file, f"line {reader.line_num}: malformed ({exc})") from None
    return rows


# ------------------------------------------------------------------------------- Something-Something v2


def _ssv2_label(record: dict) -> str | None:
    # The class is the template with its placeholders' brackets removed ("Holding [something] next to
    # [something]" → "Holding something next to something"), which is how something-something-v2-labels.json
    # names the 174 classes. `label` is the per-video instance text, used only when there is no template.
    template = record.get("template")
    if isinstance(template, str) and template.strip():
        return template.replace("[", "").replace("]", "").strip()
    label = record.get("label")
    return str(label).strip() if label not in (None, "") else None


def _rows_ssv2(input_path: Path, root: Path | None) -> list[_Row]:
    pattern = re.compile(r".*(train|validation|test).*\.json", re.IGNORECASE)
    files = _annotation_files(input_path, pattern, "Something-Something .json files (train/validation/test)")
    index = _VideoIndex(_default_root(input_path, root))
    rows = []
    for json_file in files:
        try:
            data = json.loads(_read_text(json_file))
        except json.JSONDecodeError as exc:
            raise _json_error(json_file, exc) from None
        if not isinstance(data, list):
            raise _usage(json_file, "expected a JSON list of objects with an 'id' key")
        subset = _split_from_name(json_file.stem)
        for number, record in enumerate(data, start=1):
            where = f"{json_file} entry {number}"
            if not isinstance(record, dict) or record.get("id") in (None, ""):
                raise UsageError(f"{where}: expected an object with an 'id' key")
            video = str(record["id"]).strip()
            found = index.find([video])
            path = found[0] if found else index.nominal(f"{video}.webm")
            rows.append(_Row(rel=video, path=path, where=where, label=_ssv2_label(record), split=subset, name=video))
    return rows


# ---------------------------------------------------------------------------------- THUMOS14 / ActivityNet


_THUMOS_FILE = re.compile(r"(.+)_(val|validation|test)\.txt", re.IGNORECASE)


def _segment(start: float, end: float) -> tuple[float, float] | None:
    """Official annotations as published: clamp a negative start, drop empty segments."""
    start = max(start, 0.0)
    return (start, end) if end > start else None


def _rows_thumos_txt(input_path: Path, root: Path | None) -> list[_Row]:
    # Official temporal annotations: one file per class, `<Class>_val.txt` / `<Class>_test.txt`, lines
    # "<video_name> <start_sec> <end_sec>". `Ambiguous_*.txt` marks unclear stretches, not a class: skipped.
    files = _annotation_files(input_path, _THUMOS_FILE, "THUMOS14 annotation files '<Class>_val.txt'/'<Class>_test.txt'")
    index = _VideoIndex(_default_root(input_path, root))
    rows = []
    for ann_file in files:
        m = _THUMOS_FILE.fullmatch(ann_file.name)
        if not m:
            raise _usage(ann_file, "not a THUMOS14 annotation file (named '<Class>_val.txt' or '<Class>_test.txt')")
        label, subset = m.group(1), _SPLIT_NAMES[m.group(2).lower()]
        if label.lower() == "ambiguous":
            continue
        for number, line in _lines(ann_file):
            where = f"{ann_file} line {number}"
            parts = line.split()
            if len(parts) != 3:
                raise UsageError(f"{where}: expected '<video> <start_sec> <end_sec>', got {line!r}")
            try:
                start, end = float(parts[1]), float(parts[2])
            except ValueError:
                raise UsageError(f"{where}: start and end must be numbers of seconds, got {line!r}") from None
            seg = _segment(start, end)
            if seg is None:
                continue
            video = parts[0]
            found = index.find([_base_name(video)])
            path = found[0] if found else index.nominal(f"{video}.mp4")
            rows.append(_Row(rel=video, path=path, where=where, label=label, split=subset,
                             start_sec=seg[0], end_sec=seg[1]))
    return rows


def _rows_activitynet(input_path: Path, root: Path | None) -> list[_Row]:
    # ActivityNet JSON: {"database": {<id>: {"subset": "training"|"validation"|"testing", "annotations":
    # [{"segment": [start, end], "label": ...}]}}}; ActionFormer's thumos14.json uses the same layout with
    # subsets "Validation"/"Test". Videos are `<id>.<ext>` or, from the ActivityNet crawler, `v_<id>.<ext>`.
    # A video without annotations (the unlabeled test subset) becomes one whole-video item.
    files = _annotation_files(input_path, re.compile(r".+\.json", re.IGNORECASE), "ActivityNet-style .json files")
    index = _VideoIndex(_default_root(input_path, root))
    rows = []
    for json_file in files:
        try:
            data = json.loads(_read_text(json_file))
        except json.JSONDecodeError as exc:
            raise _json_error(json_file, exc) from None
        database = data.get("database") if isinstance(data, dict) else None
        if not isinstance(database, dict):
            raise _usage(json_file, "expected an object with a 'database' mapping of video ids (ActivityNet format)")
        for video, entry in database.items():
            where = f"{json_file} database.{video}"
            if not isinstance(entry, dict):
                raise UsageError(f"{where}: expected an object")
            raw_subset = str(entry.get("subset") or "").strip().lower()
            subset = _SPLIT_NAMES.get(raw_subset, raw_subset or None)
            found = index.find([video, f"v_{video}"])
            path = found[0] if found else index.nominal(f"{video}.mp4")
            annotations = entry.get("annotations") or []
            if not isinstance(annotations, list):
                raise UsageError(f"{where}.annotations: expected a list")
            if not annotations:
                rows.append(_Row(rel=video, path=path, where=where, split=subset))
            for number, ann in enumerate(annotations):
                ann_where = f"{where}.annotations[{number}]"
                segment = ann.get("segment") if isinstance(ann, dict) else None
                if not (isinstance(segment, list) and len(segment) == 2):
                    raise UsageError(f"{ann_where}: expected 'segment': [start_sec, end_sec]")
                try:
                    start, end = float(segment[0]), float(segment[1])
                except (TypeError, ValueError):
                    raise UsageError(f"{ann_where}: segment times must be numbers, got {segment!r}") from None
                if not (math.isfinite(start) and math.isfinite(end)):
                    raise UsageError(f"{ann_where}: segment times must be finite, got {segment!r}")
                seg = _segment(start, end)
                if seg is None:
                    continue
                label = _optional_text(ann.get("label"))
                rows.append(_Row(rel=video, path=path, where=ann_where, label=label, split=subset,
                                 start_sec=seg[0], end_sec=seg[1]))
    return rows


def _rows_thumos14(input_path: Path, root: Path | None) -> list[_Row]:
    if input_path.is_file() and input_path.suffix.lower() == ".json":
        return _rows_activitynet(input_path, root)
    if input_path.is_dir() and not any(_THUMOS_FILE.fullmatch(p.name) for p in input_path.iterdir()):
        if any(p.suffix.lower() == ".json" for p in input_path.iterdir()):
            return _rows_activitynet(input_path, root)
    return _rows_thumos_txt(input_path, root)


# ---------------------------------------------------------------------------------------- ids and items


def _assign_ids(rows: list[_Row], *, strict: bool) -> list[VideoItem]:
    """Give every row its final id; see the module docstring for the rules.

    `strict` (the user's own list files): a row listed twice is an error. Official annotations: exact
    duplicates are merged. Explicit `video_id`s are never changed to resolve a clash: a clash is an error.
    """
    if not strict:
        unique: dict[tuple, _Row] = {}
        for row in rows:
            unique.setdefault(row.key(), row)
        rows = list(unique.values())

    def readable_id(row: _Row, force_hash: bool = False) -> str:
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
    groups: dict[str, list[int]] = defaultdict(list)
    for i, video_id in enumerate(ids):
        groups[video_id].append(i)
    for video_id, members in groups.items():
        if len(members) < 2:
            continue
        first_by_key: dict[tuple, _Row] = {}
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
    seen: dict[str, int] = {}
    for i, video_id in enumerate(ids):
        if video_id in seen:
            raise UsageError(
                f"{rows[i].where}: duplicate video id {video_id!r} (also {rows[seen[video_id]].where}); "
                "rename one of the files or give explicit video_id values"
            )
        seen[video_id] = i
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
    return sorted(items, key=lambda item: item.video_id)


def _require_some_exist(rows: list[_Row], source: Path, root: Path | None) -> None:
    """A root that holds none of the listed videos is a usage error (wrong --root), not N failed videos."""
    if any(os.path.exists(row.path) for row in rows):
        return
    example = rows[0].path
    where = f"under {root}" if root is not None else f"next to {source if source.is_dir() else source.parent}"
    raise _usage(
        source,
        f"none of the {len(rows)} listed videos exists {where} (e.g. {example}); pass root= / --root with the "
        "folder that holds the videos",
    )


def canonical_dataset(name: str) -> str:
    """The canonical dataset name for `name` (case-insensitive, common aliases), or UsageError."""
    key = name.strip().lower().replace("_", "-")
    if key not in _DATASET_ALIASES:
        raise UsageError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    return _DATASET_ALIASES[key]


def load_items(
    input_path: str | Path,
    *,
    dataset: str | None = None,
    split: int | None = None,
    root: str | Path | None = None,
) -> list[VideoItem]:
    """Read a folder, a video, a list file or (with `dataset`) an official annotation file/folder.

    `split` picks the official split number for UCF101 and HMDB51 (1..3, default 1); every item's `split` is
    "train"/"val"/"test" as the annotation says (list files: the value given). `root` is the folder the
    video files are in when they are not next to the list/annotation file. Returns items sorted by video_id.
    Raises `UsageError` (one line: file, line, reason) for anything the user must fix.
    """
    source = Path(input_path).expanduser()
    root_path = Path(root).expanduser() if root is not None else None
    canonical = canonical_dataset(dataset) if dataset is not None else None
    if not source.exists():
        raise _usage(source, "no such file or folder")
    if root_path is not None and not root_path.is_dir():
        raise _usage(root_path, "root is not a folder")
    if split is not None and canonical not in ("ucf101", "hmdb51"):
        raise UsageError(f"split={split}: only ucf101 and hmdb51 have numbered splits")
    if not (source.is_dir() or source.is_file()):
        raise _usage(source, "not a regular file or folder")

    if canonical is None:
        if source.is_dir():
            return _assign_ids(_rows_from_folder(source), strict=True)
        if _is_video(source.name):
            return _assign_ids([_Row(rel=source.name, path=str(source), where=str(source))], strict=True)
        if source.suffix.lower() not in LIST_EXTENSIONS:
            raise _usage(
                source,
                "not a folder, a video or a list file (.csv .tsv .json .jsonl); for an official annotation "
                f"file pass dataset= ({', '.join(DATASETS)})",
            )
        rows = _rows_from_list(source, root_path)
        _require_some_exist(rows, source, root_path)
        return _assign_ids(rows, strict=True)

    if canonical == "ucf101":
        rows = _rows_ucf101(source, split, root_path)
    elif canonical == "hmdb51":
        rows = _rows_hmdb51(source, split, root_path)
    elif canonical == "kinetics":
        rows = _rows_kinetics(source, root_path)
    elif canonical == "ssv2":
        rows = _rows_ssv2(source, root_path)
    elif canonical == "thumos14":
        rows = _rows_thumos14(source, root_path)
    else:
        rows = _rows_activitynet(source, root_path)
    if not rows:
        raise _usage(source, f"the {canonical} annotation lists no videos")
    _require_some_exist(rows, source, root_path)
    return _assign_ids(rows, strict=False)


def with_split(items: Iterable[VideoItem], split: str) -> list[VideoItem]:
    """Only the items of one split ("train", "val", "test")."""
    return [item for item in items if item.split == split]
