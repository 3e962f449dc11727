"""Turn what the user has (a folder, a list file, an official annotation file) into `VideoItem` rows.

    from vfx.sources import load_items
    items = load_items("ucfTrainTestlist/", dataset="ucf101", split=1, root="UCF-101/")

Inputs `load_items` understands, and the module that documents each:

* a **folder** of videos, flat or one subfolder per class (`walk.py`), or a single **video file**;
* a **list file** `.csv` / `.tsv` / `.json` / `.jsonl` with a `path` column (`lists.py`);
* with `dataset=` (`--dataset`), an **official annotation** file or folder, one module per format, each
  registered in `registry.py`: `ucf101.py`, `hmdb51.py`, `kinetics.py`, `ssv2.py`, `thumos14.py`,
  `activitynet.py`. `root` is where the videos are; by default the annotation file's folder.

Video ids and their rules: `ids.py`. Official annotation files are taken as published: exact duplicate rows
are merged, empty segments (end <= start) are skipped and negative start times clamped to 0. In the user's
own list files the same things are errors, reported with the line.
"""

# Registration order is the order `--dataset` lists the formats in.
from vfx.sources import ucf101, hmdb51, kinetics, ssv2, thumos14, activitynet  # noqa: F401,I001 - register the parsers
from vfx.sources.ids import VIDEO_EXTENSIONS, is_safe_id, make_video_id, segment_suffix, short_hash
from vfx.sources.lists import LIST_EXTENSIONS
from vfx.sources.load import load_items
from vfx.sources.registry import canonical_dataset, dataset_names, register_dataset

__all__ = [
    "LIST_EXTENSIONS", "VIDEO_EXTENSIONS", "canonical_dataset", "dataset_names", "is_safe_id", "load_items",
    "make_video_id", "register_dataset", "segment_suffix", "short_hash",
]
