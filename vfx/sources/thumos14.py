"""THUMOS14: the official per-class temporal annotations, or ActionFormer's `thumos14.json` (ActivityNet layout).

Official files are one per class, `<Class>_val.txt` / `<Class>_test.txt`, lines "<video_name> <start_sec>
<end_sec>"; `Ambiguous_*.txt` marks unclear stretches, not a class, and is skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

from vfx.errors import UsageError
from vfx.sources.files import annotation_files, default_root, lines, usage
from vfx.sources.ids import base_name
from vfx.sources.registry import dataset_format, register_dataset
from vfx.sources.rows import SPLIT_NAMES, Row, clamp_segment
from vfx.sources.walk import VideoIndex


_THUMOS_FILE = re.compile(r"(.+)_(val|validation|test)\.txt", re.IGNORECASE)


def _rows_thumos_txt(input_path: Path, root: Path | None) -> list[Row]:
    files = annotation_files(input_path, _THUMOS_FILE, "THUMOS14 annotation files '<Class>_val.txt'/'<Class>_test.txt'")
    index = VideoIndex(default_root(input_path, root))
    rows = []
    for ann_file in files:
        m = _THUMOS_FILE.fullmatch(ann_file.name)
        if not m:
            raise usage(ann_file, "not a THUMOS14 annotation file (named '<Class>_val.txt' or '<Class>_test.txt')")
        label, subset = m.group(1), SPLIT_NAMES[m.group(2).lower()]
        if label.lower() == "ambiguous":
            continue
        for number, line in lines(ann_file):
            where = f"{ann_file} line {number}"
            parts = line.split()
            if len(parts) != 3:
                raise UsageError(f"{where}: expected '<video> <start_sec> <end_sec>', got {line!r}")
            try:
                start, end = float(parts[1]), float(parts[2])
            except ValueError:
                raise UsageError(f"{where}: start and end must be numbers of seconds, got {line!r}") from None
            seg = clamp_segment(start, end)
            if seg is None:
                continue
            video = parts[0]
            found = index.find([base_name(video)])
            path = found[0] if found else index.nominal(f"{video}.mp4")
            rows.append(Row(rel=video, path=path, where=where, label=label, split=subset,
                             start_sec=seg[0], end_sec=seg[1]))
    return rows


@register_dataset("thumos14", aliases=("thumos",))
def rows_thumos14(input_path: Path, root: Path | None, split: int | None = None) -> list[Row]:
    rows_activitynet = dataset_format("activitynet").parse
    if input_path.is_file() and input_path.suffix.lower() == ".json":
        return rows_activitynet(input_path, root)
    if input_path.is_dir() and not any(_THUMOS_FILE.fullmatch(p.name) for p in input_path.iterdir()):
        if any(p.suffix.lower() == ".json" for p in input_path.iterdir()):
            return rows_activitynet(input_path, root)
    return _rows_thumos_txt(input_path, root)
