"""Reading what the user points at: text files, annotation folders, and whether a listed video exists.

`exists` and `resolve` are the one place that decides what a listed path means, so that object-store URLs
(`s3://bucket/x.mp4`) can be taken as given instead of being joined to a folder or checked on local disk.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from vfx.errors import UsageError

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def usage(path: Path | str, reason: str) -> UsageError:
    return UsageError(f"{path}: {reason}")


def is_url(path: str) -> bool:
    """`s3://...`, `gs://...`, `file://...`: a URL rather than a local path."""
    return _URL.match(path) is not None


def resolve(raw: str, base_dir: Path | str) -> str:
    """A listed path as the run will open it: `~` expanded, relative paths joined to `base_dir`, URLs as given."""
    if raw[:1] not in ("/", "~", "") and "://" not in raw and isinstance(base_dir, str) and base_dir[-1:] != "/":
        return base_dir + "/" + raw  # the common relative path, as os.path.join would give it, without its cost
    if is_url(raw):
        return raw
    path = os.path.expanduser(raw)
    return path if os.path.isabs(path) else os.path.join(base_dir, path)


_NOT_PLAIN_RELATIVE = re.compile(r"^[/~]|://", re.MULTILINE)


def resolve_all(raws: list[str], base_dir: str) -> list[str]:
    """`[resolve(raw, base_dir) for raw in raws]` for non-empty `raws`; one C-level concatenation each when all
    are plain relative paths (the usual list file), checked in one regex pass over them joined."""
    joined = "\n".join(raws)
    if base_dir[-1:] != "/" and joined.count("\n") == len(raws) - 1 and not _NOT_PLAIN_RELATIVE.search(joined):
        return list(map((base_dir + "/").__add__, raws))
    return [resolve(raw, base_dir) for raw in raws]

def exists(path: str) -> bool:
    """Whether a listed video is there. URLs are not checked here: the worker that reads one says so."""
    return is_url(path) or os.path.exists(path)


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise usage(path, f"cannot read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise usage(path, f"not UTF-8 text (byte {exc.start})") from None


def read_json(path: Path):
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise usage(path, f"line {exc.lineno}: invalid JSON ({exc.msg})") from None


def lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped line) of the non-empty lines of a text file."""
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


def annotation_files(input_path: Path, pattern: re.Pattern[str], what: str) -> list[Path]:
    """`input_path` itself if it is a file, else the files in that folder whose name matches `pattern`."""
    if input_path.is_file():
        return [input_path]
    files = sorted(p for p in input_path.iterdir() if p.is_file() and pattern.fullmatch(p.name))
    if not files:
        raise usage(input_path, f"no {what} in this folder")
    return files


def default_root(input_path: Path, root: Path | None) -> Path:
    """Where the videos of an annotation are: `root` when given, else the annotation's folder."""
    if root is not None:
        return root
    return input_path if input_path.is_dir() else input_path.parent


def numbered_split_files(input_path: Path, pattern: re.Pattern[str], split: int | None, dataset: str,
                         what: str, wrong_file: str, noun: str = "file") -> list[Path]:
    """The annotation files of official split `split` (1..3, default 1): those of a folder, or the file given.

    `pattern` matches a file name with the split number as group 2; `what` names the files in messages (with
    `{number}` for the split number), `wrong_file` a file given that does not match.
    """
    if input_path.is_dir():
        number = check_split_number(split, dataset)
        files = [p for p in sorted(input_path.iterdir()) if (m := pattern.fullmatch(p.name)) and int(m.group(2)) == number]
        if not files:
            raise usage(input_path, f"no {what.format(number=number)} in this folder")
        return files
    m = pattern.fullmatch(input_path.name)
    if not m:
        raise usage(input_path, wrong_file)
    if split is not None and int(m.group(2)) != check_split_number(split, dataset):
        raise usage(input_path, f"this {noun} is split {m.group(2)}, but split {split} was asked for")
    return [input_path]


def check_split_number(split: int | None, dataset: str) -> int:
    if split is None:
        return 1
    if split not in (1, 2, 3):
        raise UsageError(f"{dataset}: split must be 1, 2 or 3, got {split}")
    return split
