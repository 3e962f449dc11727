"""Something-Something v2: `something-something-v2-{train,validation,test}.json`, lists of objects with `id`,
`template` (the class) and `label` (the instance text); videos are `<id>.webm`.
"""

from __future__ import annotations

import re
from pathlib import Path

from vfx.errors import UsageError
from vfx.sources.files import annotation_files, default_root, read_json, usage
from vfx.sources.registry import register_dataset
from vfx.sources.rows import Row, split_from_name
from vfx.sources.walk import VideoIndex


def _ssv2_label(record: dict) -> str | None:
    # The class is the template with its placeholders' brackets removed ("Holding [something] next to
    # [something]" → "Holding something next to something"), which is how something-something-v2-labels.json
    # names the 174 classes. `label` is the per-video instance text, used only when there is no template.
    template = record.get("template")
    if isinstance(template, str) and template.strip():
        return template.replace("[", "").replace("]", "").strip()
    label = record.get("label")
    return str(label).strip() if label not in (None, "") else None


@register_dataset("ssv2", aliases=("sthv2", "something-something", "something-something-v2"))
def rows_ssv2(input_path: Path, root: Path | None, split: int | None = None) -> list[Row]:
    pattern = re.compile(r".*(train|validation|test).*\.json", re.IGNORECASE)
    files = annotation_files(input_path, pattern, "Something-Something .json files (train/validation/test)")
    index = VideoIndex(default_root(input_path, root))
    rows = []
    for json_file in files:
        data = read_json(json_file)
        if not isinstance(data, list):
            raise usage(json_file, "expected a JSON list of objects with an 'id' key")
        subset = split_from_name(json_file.stem)
        for number, record in enumerate(data, start=1):
            where = f"{json_file} entry {number}"
            if not isinstance(record, dict) or record.get("id") in (None, ""):
                raise UsageError(f"{where}: expected an object with an 'id' key")
            video = str(record["id"]).strip()
            found = index.find([video])
            path = found[0] if found else index.nominal(f"{video}.webm")
            rows.append(Row(rel=video, path=path, where=where, label=_ssv2_label(record), split=subset, name=video))
    return rows
