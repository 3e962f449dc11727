"""The user's own list files: `.csv` / `.tsv` (header row), `.json` (list of objects), `.jsonl` (one object a line).

Columns: `path` (required) and optional `label`, `split`, `start_sec`, `end_sec`, `video_id`; other columns are
ignored. Split spellings "training"/"validation"/"testing" become "train"/"val"/"test". Relative paths
resolve against `root` when given, else against the list file's folder; URLs (`s3://...`) are taken as given.
Unlike official annotations, a row listed twice, an empty segment or a negative time is an error, reported
with the line.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from vfx.errors import UsageError
from vfx.sources.files import read_json, resolve, resolve_all, usage
from vfx.sources.rows import Row, normalise_split, optional_text, parse_seconds

LIST_EXTENSIONS = frozenset({".csv", ".tsv", ".json", ".jsonl"})
_COLUMNS = ("path", "label", "split", "start_sec", "end_sec", "video_id")  # the columns read; others are ignored


def _row_from_record(record: dict, where: str, base_dir: str, normalised: bool = False) -> Row:
    """`normalised`: the keys are already the lower-case column names (the CSV reader's records)."""
    fields = record if normalised else {str(k).strip().lower(): v for k, v in record.items() if k is not None}
    raw_path = fields.get("path")
    if not isinstance(raw_path, str) or not raw_path.strip():
        raise UsageError(f"{where}: missing or empty 'path'")
    raw_path = raw_path.strip()
    start = parse_seconds(fields.get("start_sec"), where, "start_sec")
    end = parse_seconds(fields.get("end_sec"), where, "end_sec")
    if start is not None and end is not None and end <= start:
        raise UsageError(f"{where}: end_sec ({end:g}) must be greater than start_sec ({start:g})")
    explicit_id = optional_text(fields.get("video_id"))
    return Row(
        rel=raw_path,
        path=resolve(raw_path, base_dir),
        where=where,
        label=_shared(optional_text(fields.get("label"))),
        split=_shared(normalise_split(optional_text(fields.get("split")))),
        start_sec=start,
        end_sec=end,
        explicit_id=explicit_id,
    )


def _shared(text: str | None) -> str | None:
    """One string object per distinct label or split (a 10^6-row list has a few hundred), not one per row."""
    return sys.intern(text) if text is not None else None


def _open_text(list_file: Path):
    try:
        return open(list_file, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise usage(list_file, f"cannot read ({exc.strerror or exc})") from None


def _rows_from_csv(list_file: Path, base_dir: str, delimiter: str) -> list[Row]:
    """Streamed row by row (a 10^6-row list is never held as text or as dicts): one Row per data line."""
    rows = []
    with _open_text(list_file) as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            try:
                header = [h.strip().lower() for h in next(reader)]
            except StopIteration:
                header = []
            except csv.Error as exc:
                raise usage(list_file, f"line 1: malformed header ({exc})") from None
            if not header:
                raise usage(list_file, "empty list file (expected a header row with a 'path' column)")
            if "path" not in header:
                hint = ""
                if "youtube_id" in header:
                    hint = " (this looks like a Kinetics annotation file: pass dataset kinetics)"
                raise usage(list_file, f"line 1: no 'path' column in header {header}{hint}")
            column = {name: n for n, name in enumerate(header)}  # a repeated name: the last one counts
            wanted = [(name, column[name]) for name in _COLUMNS if name in column]
            width = len(header)
            for values in reader:
                if len(values) > width:
                    raise UsageError(f"{list_file} line {reader.line_num}: {len(values)} fields, the header has {width}")
                if not any(v.strip() for v in values):
                    continue
                record = {name: values[n] if n < len(values) else None for name, n in wanted}
                rows.append(_row_from_record(record, f"{list_file} line {reader.line_num}", base_dir, normalised=True))
        except csv.Error as exc:
            raise usage(list_file, f"line {reader.line_num}: malformed ({exc})") from None
        except UnicodeDecodeError as exc:
            raise usage(list_file, f"not UTF-8 text (after line {reader.line_num}, {exc.reason})") from None
    return rows


_BULK_LINES = 65536  # lines parsed per step of the bulk reader: its memory is this chunk plus the columns


@dataclass(slots=True)
class ListColumns:
    """A list file's values by column, as `_row_from_record` would read them; None: a column the file lacks."""

    rels: list[str]  # `path` as written (stripped): what derived ids and their hashes come from
    paths: list[str]  # resolved as `resolve` does
    labels: list[str | None] | None
    splits: list[str | None] | None
    explicit_ids: list[str | None] | None


def _shared_values(values: tuple[str, ...], convert, memo: dict) -> list:
    """`convert` applied once per distinct value (a list has a few hundred labels), the results shared."""
    for value in set(values).difference(memo):
        memo[value] = convert(value)
    return list(map(memo.__getitem__, values))


def _label(value: str) -> str | None:
    return _shared(optional_text(value))


def _split(value: str) -> str | None:
    return _shared(normalise_split(optional_text(value)))


def columns_from_list(list_file: Path, root: Path | str | None) -> ListColumns | None:
    """A `.csv` / `.tsv` list of whole videos read in bulk (a 10^6-row list in ~2 s instead of ~11 s row by row).

    None when the file needs `rows_from_list`: another format, `start_sec` / `end_sec` columns, or any line
    that is not a plain row (wrong number of fields, an empty `path`, a blank line inside, malformed text).
    That reader then reads it again, and says what is wrong and where. Same values as it gives otherwise.
    """
    delimiter = {".csv": ",", ".tsv": "\t"}.get(list_file.suffix.lower())
    if delimiter is None:
        return None
    base_dir = os.fspath(root if root is not None else list_file.parent)
    rels: list[str] = []
    paths: list[str] = []
    labels: list[str | None] = []
    splits: list[str | None] = []
    explicit_ids: list[str | None] = []
    label_memo: dict[str, str | None] = {}
    split_memo: dict[str, str | None] = {}
    with _open_text(list_file) as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = [h.strip().lower() for h in next(reader)]
            if "path" not in header or "start_sec" in header or "end_sec" in header:
                return None
            width = len(header)
            column = {name: n for n, name in enumerate(header)}  # a repeated name: the last one counts
            # Chunk by chunk, so that the raw text of a 10^6-row list is never held whole.
            while chunk := list(islice(reader, _BULK_LINES)):
                if set(map(len, chunk)) != {width}:
                    return None
                by_column = list(zip(*chunk))
                chunk_rels = list(map(str.strip, by_column[column["path"]]))
                if not all(chunk_rels):
                    return None
                rels += chunk_rels
                paths += resolve_all(chunk_rels, base_dir)
                if "label" in column:
                    labels += _shared_values(by_column[column["label"]], _label, label_memo)
                if "split" in column:
                    splits += _shared_values(by_column[column["split"]], _split, split_memo)
                if "video_id" in column:
                    given = list(map(str.strip, by_column[column["video_id"]]))
                    explicit_ids += given if all(given) else [value or None for value in given]
        except (StopIteration, csv.Error, UnicodeDecodeError):
            return None
    if not rels:
        return None
    return ListColumns(
        rels=rels,
        paths=paths,
        labels=labels if any(label_memo.values()) else None,
        splits=splits if any(split_memo.values()) else None,
        explicit_ids=explicit_ids if "video_id" in column else None,
    )


def _rows_from_json(list_file: Path, base_dir: str) -> list[Row]:
    data = read_json(list_file)
    if isinstance(data, dict) and "database" in data:
        raise usage(list_file, "this is an ActivityNet-style annotation file: pass dataset activitynet or thumos14")
    if not isinstance(data, list):
        raise usage(list_file, "expected a JSON list of objects with a 'path' key")
    rows = []
    for number, record in enumerate(data, start=1):
        where = f"{list_file} entry {number}"
        if not isinstance(record, dict):
            raise UsageError(f"{where}: expected an object with a 'path' key, got {type(record).__name__}")
        rows.append(_row_from_record(record, where, base_dir))
    return rows


def _rows_from_jsonl(list_file: Path, base_dir: str) -> list[Row]:
    rows = []
    with _open_text(list_file) as f:
        number = 0
        try:
            for number, line in enumerate(f, start=1):
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
        except UnicodeDecodeError as exc:
            raise usage(list_file, f"not UTF-8 text (after line {number}, {exc.reason})") from None
    return rows


def rows_from_list(list_file: Path, root: Path | str | None) -> list[Row]:
    """`root`: a folder, or a URL prefix (`s3://bucket/videos`) that relative paths are joined to."""
    base_dir = os.fspath(root if root is not None else list_file.parent)
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
        raise usage(list_file, "the list has no entries")
    return rows
