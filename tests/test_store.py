import os
import pickle
import shutil

import h5py
import numpy as np
import pytest

import vfx
from vfx.engine import RunOptions, run_stage
from vfx.errors import UsageError
from vfx.frames import FrameParams, FramesStage
from vfx.image import Resize
from vfx.sources import load_items
from vfx.store.layout import shard_path
from videos import pattern_frames, write_video

RAW = FrameParams(resize=Resize(), format="raw")


def _extract(items, out, params=RAW, **kw):
    return run_stage(FramesStage(params), items, out, RunOptions(engine="serial", progress=False, shard_size=2, **kw))


def test_serial_run_writes_a_readable_store(tiny_dataset, tmp_path):
    items = load_items(tiny_dataset)
    summary = _extract(items, tmp_path / "s")
    assert (summary.done, summary.failed, summary.skipped) == (6, 0, 0) and summary.ok
    store = vfx.open_store(tmp_path / "s")
    assert store.kind == "frames"
    assert store.params["format"] == "raw" and store.params["resize"]["short_side"] is None
    assert store.video_ids() == sorted(i.video_id for i in items) and store.failures() == {}
    for n, item in enumerate(sorted(items, key=lambda i: i.video_id)):
        frames = store.read_frames(item.video_id)
        n_src = int(item.path.split("clip ")[1].split(".")[0])
        expected = pattern_frames(20 + 2 * n_src, seed=n_src, dx={"left": -2, "right": 2, "still": 0}[item.label])
        np.testing.assert_array_equal(frames, expected)
        np.testing.assert_array_equal(store.frame_index(item.video_id), np.arange(len(expected)))
        np.testing.assert_array_equal(store.read_frames(item.video_id, [3, 1]), expected[[3, 1]])
        attrs = store.attrs(item.video_id)
        assert attrs["label"] == item.label and attrs["source_path"] == item.path
        assert attrs["fps"] == pytest.approx(25) and attrs["num_frames"] == len(expected)
    # 6 videos in shards of 2: three shard files in bucket 0000, the catalog, the index, the manifest; the
    # commit log was folded into the catalog and removed
    files = sorted(str(p.relative_to(tmp_path / "s")) for p in (tmp_path / "s").rglob("*") if p.is_file())
    assert files == ["catalog.h5", "index.h5", *[f"shards/0000/shard-000000{i}.h5" for i in range(3)], "vfx-store.json"]
    # plain h5py through index.h5 sees the same bytes
    vid = store.video_ids()[0]
    with h5py.File(tmp_path / "s" / "index.h5", "r") as index:
        assert index.attrs["kind"] == "frames"
        np.testing.assert_array_equal(index["videos"][vid]["frames"][()], store.read_frames(vid))
    # a Store survives pickling (DataLoader workers) and reopens its files lazily
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone.read_frames(vid), store.read_frames(vid))


def test_rerun_skips_finished_videos_and_resumes_new_ones(tiny_dataset, tmp_path):
    items = load_items(tiny_dataset)
    _extract(items[:4], tmp_path / "s")
    first = os.stat(shard_path(tmp_path / "s", 0)).st_mtime_ns
    summary = _extract(items, tmp_path / "s")
    assert (summary.skipped, summary.done) == (4, 2)
    assert os.stat(shard_path(tmp_path / "s", 0)).st_mtime_ns == first  # finished work is not redone
    assert len(vfx.open_store(tmp_path / "s").video_ids()) == 6
    with h5py.File(tmp_path / "s" / "index.h5", "r") as index:  # the index gained the new shard's links
        assert sorted(index["videos"]) == sorted(i.video_id for i in items)
        assert sorted(index["shards"][()].tolist()) == [0, 1, 2]
    stamps = {name: os.stat(tmp_path / "s" / name).st_mtime_ns for name in ("catalog.h5", "index.h5")}
    again = _extract(items, tmp_path / "s")
    assert (again.skipped, again.done, again.failed) == (6, 0, 0)
    # nothing to do: neither the catalog nor the index is rewritten
    assert {name: os.stat(tmp_path / "s" / name).st_mtime_ns for name in stamps} == stamps


def test_other_parameters_are_refused_unless_overwrite(tiny_dataset, tmp_path):
    items = load_items(tiny_dataset)[:2]
    _extract(items, tmp_path / "s")
    other = FrameParams(resize=Resize(short_side=32), format="raw")
    with pytest.raises(UsageError, match=r"other parameters \(resize.short_side: None -> 32\).*--overwrite"):
        _extract(items, tmp_path / "s", params=other)
    _extract(items, tmp_path / "s", params=other, overwrite=True)
    store = vfx.open_store(tmp_path / "s")
    assert store.params["resize"]["short_side"] == 32 and store.read_frames(store.video_ids()[0]).shape[1] == 32


def test_output_that_is_not_a_store_is_never_touched(tiny_dataset, tmp_path):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("...")
    with pytest.raises(UsageError, match="not empty and is not a vfx store"):
        _extract(load_items(tiny_dataset), precious, overwrite=True)
    assert (precious / "chapter1.tex").read_text() == "..."


def test_bad_videos_are_recorded_and_the_run_goes_on(tiny_dataset, tmp_path, samples):
    folder = tmp_path / "videos"
    shutil.copytree(tiny_dataset / "left", folder)
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "readme.mp4").write_text("not a video")
    data = samples["bikes"].read_bytes()
    (folder / "cut.mp4").write_bytes(data[: len(data) // 3])
    summary = _extract(load_items(folder), tmp_path / "s")
    assert (summary.done, summary.failed) == (2, 3) and not summary.ok
    store = vfx.open_store(tmp_path / "s")
    failures = store.failures()
    assert set(failures) == {"empty", "readme", "cut"}
    assert "empty.mp4: empty file" in failures["empty"]
    assert "cut.mp4" in failures["cut"] and "truncated" in failures["cut"]
    assert store.video_ids("failed") == ["cut", "empty", "readme"]
    # failures are not retried by a plain rerun, but are with retry_failed
    assert _extract(load_items(folder), tmp_path / "s").skipped == 5
    assert _extract(load_items(folder), tmp_path / "s", retry_failed=True).failed == 3


def test_interrupted_leftovers_are_removed_and_never_read(tiny_dataset, tmp_path):
    items = load_items(tiny_dataset)
    _extract(items[:2], tmp_path / "s")
    store_dir = tmp_path / "s"
    bucket = store_dir / "shards" / "0000"
    # what a killed run leaves: a half-written tmp file, a published shard that was never committed, a half
    # written index copy, and a commit log line cut short by the kill
    (bucket / "shard-0000001.999.h5.tmp").write_bytes(b"\x89HDF half")
    shutil.copy(shard_path(store_dir, 0), bucket / "shard-0000007.h5")
    (store_dir / "index.h5.999.tmp").write_bytes(b"\x89HDF half")
    (store_dir / "log.jsonl").write_bytes(b'{"shard": 3, "videos": {"cl')
    assert len(vfx.open_store(store_dir).video_ids()) == 2  # readers only trust the catalog and whole log lines
    summary = _extract(items, store_dir)
    assert summary.done == 4
    names = sorted(p.name for p in bucket.iterdir())
    assert names == ["shard-0000000.h5", "shard-0000008.h5", "shard-0000009.h5"]  # new ids after the leftover's
    assert sorted(p.name for p in store_dir.iterdir()) == ["catalog.h5", "index.h5", "shards", "vfx-store.json"]
    assert vfx.open_store(store_dir).video_ids() == sorted(i.video_id for i in items)



@pytest.mark.parametrize("fmt", ["jpeg", "raw"])
def test_read_frames_in_any_order_with_repeats_equals_the_whole_video_indexed(tiny_dataset, tmp_path, fmt):
    # TSN asks for a few scattered frames, in any order, sometimes twice: the store reads one slice per run
    # of consecutive positions and must return exactly the frames asked for, in the asked order.
    items = load_items(tiny_dataset)[:2]
    _extract(items, tmp_path / "s", params=FrameParams(resize=Resize(), format=fmt))
    store = vfx.open_store(tmp_path / "s")
    for vid in store.video_ids():
        whole = store.read_frames(vid)
        for asked in ([7, 2, 3, 4, 7, 0], [-1, 0], [5], [3, 4, 5], list(range(len(whole)))[::-1]):
            np.testing.assert_array_equal(store.read_frames(vid, asked), whole[asked])
        with pytest.raises(IndexError):
            store.read_frames(vid, [len(whole)])
    store.close()
