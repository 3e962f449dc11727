"""ActivityNet-style JSON annotations (also ActionFormer's `thumos14.json`, which uses the same layout).

{"database": {<id>: {"subset": "training"|"validation"|"testing", "annotations": [{"segment": [start, end],
"label": ...}]}}}; ActionFormer's thumos14.json has subsets "Validation"/"Test". Videos are `<id>.<ext>` or,
from the ActivityNet crawler, `v_<id>.<ext>`. A video without annotations (the unlabeled test subset)
becomes one whole-video item.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from vfx.errors import UsageError
from vfx.sources.files import annotation_files, default_root, read_json, usage
from vfx.sources.registry import register_dataset
from vfx.sources.rows import SPLIT_NAMES, Row, clamp_segment, optional_text
from vfx.sources.walk import VideoIndex


@register_dataset("activitynet", aliases=("anet",))
def rows_activitynet(input_path: Path, root: Path | None, split: int | None = None) -> list[Row]:
    files = annotation_files(input_path, re.compile(r".+\.json", re.IGNORECASE), "ActivityNet-style .json files")
    index = VideoIndex(default_root(input_path, root))
    rows = []
    for json_file in files:
        data = read_json(json_file)
        database = data.get("database") if isinstance(data, dict) else None
        if not isinstance(database, dict):
            raise usage(json_file, "expected an object with a 'database' mapping of video ids (ActivityNet format)")
        for video, entry in database.items():
            where = f"{json_file} database.{video}"
            if not isinstance(entry, dict):
                raise UsageError(f"{where}: expected an object")
            raw_subset = str(entry.get("subset") or "").strip().lower()
            subset = SPLIT_NAMES.get(raw_subset, raw_subset or None)
            found = index.find([video, f"v_{video}"])
            path = found[0] if found else index.nominal(f"{video}.mp4")
            annotations = entry.get("annotations") or []
            if not isinstance(annotations, list):
                raise UsageError(f"{where}.annotations: expected a list")
            if not annotations:
                rows.append(Row(rel=video, path=path, where=where, split=subset))
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
                seg = clamp_segment(start, end)
                if seg is None:
                    continue
                label = optional_text(ann.get("label"))
                rows.append(Row(rel=video, path=path, where=ann_where, label=label, split=subset,
                                 start_sec=seg[0], end_sec=seg[1]))
    return rows
