"""Kinetics' official CSVs: `label,youtube_id,time_start,time_end,split` (test files may lack `label`; some have
`is_cc`).

The downloaders name trimmed clips `<youtube_id>_<start:06d>_<end:06d>.mp4`; a whole YouTube video found
instead is restricted to the annotated window.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from vfx.errors import UsageError
from vfx.sources.files import annotation_files, default_root, read_text, usage
from vfx.sources.registry import register_dataset
from vfx.sources.rows import SPLIT_NAMES, Row, parse_seconds, split_from_name
from vfx.sources.walk import VideoIndex


@register_dataset("kinetics", aliases=("kinetics400", "kinetics600", "kinetics700", "k400", "k600", "k700"))
def rows_kinetics(input_path: Path, root: Path | None, split: int | None = None) -> list[Row]:
    files = annotation_files(input_path, re.compile(r".+\.csv", re.IGNORECASE), "Kinetics .csv files")
    index = VideoIndex(default_root(input_path, root))
    rows = []
    for csv_file in files:
        reader = csv.DictReader(read_text(csv_file).splitlines())
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = {"youtube_id", "time_start", "time_end"} - set(header)
        if missing:
            raise usage(csv_file, f"line 1: not a Kinetics CSV, missing columns {sorted(missing)}")
        file_split = split_from_name(csv_file.stem)
        try:
            for record in reader:
                where = f"{csv_file} line {reader.line_num}"
                fields = {str(k).strip().lower(): (v or "").strip() for k, v in record.items() if k is not None}
                youtube_id = fields["youtube_id"]
                if not youtube_id:
                    raise UsageError(f"{where}: empty youtube_id")
                start = parse_seconds(fields["time_start"], where, "time_start")
                end = parse_seconds(fields["time_end"], where, "time_end")
                if start is None or end is None:
                    raise UsageError(f"{where}: time_start and time_end are required")
                clip_name = f"{youtube_id}_{int(start):06d}_{int(end):06d}"
                label = fields.get("label") or None
                raw_split = fields.get("split", "").lower()
                subset = SPLIT_NAMES.get(raw_split, raw_split or None) or file_split
                found = index.find([clip_name, youtube_id], prefer_parent=label)
                if found is None:
                    path, seg = index.nominal(f"{clip_name}.mp4"), (None, None)
                elif found[1] == clip_name:
                    path, seg = found[0], (None, None)  # already trimmed to the annotated window
                else:
                    path, seg = found[0], (start, end)  # whole YouTube video: restrict to the window
                rows.append(
                    Row(rel=clip_name, path=path, where=where, label=label, split=subset,
                         start_sec=seg[0], end_sec=seg[1], name=clip_name)
                )
        except csv.Error as exc:
            raise usage(csv_file, f"line {reader.line_num}: malformed ({exc})") from None
    return rows
