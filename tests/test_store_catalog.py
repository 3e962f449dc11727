"""Schema 2: commit log + catalog, incremental index, bucketed shards, schema-1 stores, object storage."""

import json
import os

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

import vfx
from vfx.cli import app
from vfx.engine import RunOptions, run_stage
from vfx.errors import UsageError
from vfx.frames import FrameParams, FramesStage
from vfx.image import Resize
from vfx.sources import load_items
from vfx.store import index as index_module
from vfx.store.catalog import Catalog, Recorded, merge, read_catalog, read_log
from vfx.store.layout import SHARDS_PER_BUCKET, shard_relpath
from vfx.store.location import Location
from vfx.store.shard import ShardReceipt
from vfx.store.writer import StoreWriter

RAW = FrameParams(resize=Resize(), format="raw")


def _extract(items, out, **kw):
    return run_stage(FramesStage(RAW), items, out, RunOptions(engine="serial", progress=False, shard_size=2, **kw))


def _record(shard, videos):
    return {"shard": shard, "name": shard_relpath(shard), "size": 1, "sha256": "0" * 64, "videos": videos}


def test_merge_highest_shard_wins_and_replaying_a_folded_record_changes_nothing():
    failed = _record(3, {"a": {"status": "failed", "reason": "a.mp4: truncated"}, "b": {"status": "done"}})
    retried = _record(9, {"a": {"status": "done"}, "c": {"status": "failed", "reason": "c.mp4: empty file"}})
    catalog = merge(Catalog.empty(), [failed, retried])
    assert catalog.video_id.tolist() == [b"a", b"b", b"c"]
    assert catalog.shard.tolist() == [9, 3, 9] and catalog.shard_id.tolist() == [3, 9]
    assert catalog.reasons == {"c": "c.mp4: empty file"}
    # the log entry of shard 3 replayed after a kill between the catalog's rename and the log's deletion
    replayed = merge(catalog, [failed])
    assert replayed.status.tolist() == catalog.status.tolist() and replayed.reasons == catalog.reasons
    view = Recorded(catalog)
    assert (view.status("a"), view.status("c"), view.status("zz")) == ("done", "failed", None)
    assert view.reason("c") == "c.mp4: empty file" and view.reason("a") is None
    assert ("b" in view, "zz" in view, len(view), view.count("done"), view.count("failed")) == (True, False, 3, 2, 1)
    assert view.status_codes(["c", "zz", "a"]).tolist() == [2, 0, 1]
    assert view.get("a") == {"status": "done", "shard": 9} and view.get("zz") is None


def test_commits_are_read_back_before_the_fold_and_after_it(tiny_dataset, tmp_path):
    """A reader sees committed shards at once (catalog + log); `close` folds the log and removes it."""
    items = load_items(tiny_dataset)
    _extract(items[:2], tmp_path / "s")
    location = Location.parse(tmp_path / "s")
    writer = StoreWriter.open(tmp_path / "s", "frames", FramesStage(RAW).provenance())
    assert writer.recorded.count("done") == 2 and writer.next_shard_id() == 1
    store = vfx.open_store(tmp_path / "s")
    shard_file = store.group(items[0].video_id).file.filename
    size = os.path.getsize(shard_file)
    # Commit an existing file under a new shard id as if a worker had published it (the videos it names are
    # the ones that file holds).
    target = location.path(shard_relpath(5))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(shard_file, "rb") as src, open(target, "wb") as dst:
        dst.write(src.read())
    writer.commit(ShardReceipt(5, shard_relpath(5), size, "f" * 64, {"late": {"status": "failed", "reason": "x: broken"}}))
    assert writer.recorded.status("late") == "failed" and writer.next_shard_id() == 6
    assert len(read_log(location)) == 1 and read_catalog(location).shard_id.tolist() == [0]
    assert vfx.open_store(tmp_path / "s").failures() == {"late": "x: broken"}  # before the fold: from the log
    writer.close()
    assert not os.path.exists(location.path("log.jsonl"))
    assert read_catalog(location).shard_id.tolist() == [0, 5]
    assert vfx.open_store(tmp_path / "s").failures() == {"late": "x: broken"}


def test_a_commit_of_a_missing_or_wrong_size_shard_is_refused(tiny_dataset, tmp_path):
    from vfx.store.writer import StoreError

    writer = StoreWriter.open(tmp_path / "s", "frames", FramesStage(RAW).provenance())
    with pytest.raises(StoreError, match=r"shard-0000004.h5: shard 4 missing"):
        writer.commit(ShardReceipt(4, shard_relpath(4), 10, "0" * 64, {"v": {"status": "done"}}))
    assert "v" not in writer.recorded
    writer.close()


def test_a_kill_during_the_index_update_leaves_the_old_index_and_the_next_run_completes_it(tiny_dataset, tmp_path, monkeypatch):
    items = load_items(tiny_dataset)
    _extract(items[:2], tmp_path / "s")

    def killed(tmp):
        raise OSError("killed")  # stands for the kill: the new index is complete but not renamed

    monkeypatch.setattr(index_module, "_before_replace", killed)
    with pytest.raises(OSError, match="killed"):
        _extract(items[:4], tmp_path / "s")
    with h5py.File(tmp_path / "s" / "index.h5", "r") as index:
        assert len(index["videos"]) == 2  # the previous index, intact
    assert len(vfx.open_store(tmp_path / "s").video_ids()) == 4  # the catalog has everything
    assert not [p for p in (tmp_path / "s").iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    summary = _extract(items[:4], tmp_path / "s")  # nothing to do, but the index catches up
    assert summary.done == 0
    with h5py.File(tmp_path / "s" / "index.h5", "r") as index:
        assert sorted(index["videos"]) == sorted(i.video_id for i in items[:4])
        # plain h5py reaches the catalog through the index too
        assert index["catalog/videos/video_id"].asstr()[()].tolist() == sorted(i.video_id for i in items[:4])


def test_shards_go_to_buckets_and_the_store_has_no_file_per_shard_but_the_shard():
    assert shard_relpath(0) == "shards/0000/shard-0000000.h5"
    assert shard_relpath(SHARDS_PER_BUCKET * 62 + 499) == "shards/0062/shard-0062499.h5"


def test_failures_and_retries_through_the_catalog(tiny_dataset, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for n, src in enumerate(sorted((tiny_dataset / "left").iterdir())):
        (folder / f"ok{n}.mkv").write_bytes(src.read_bytes())
    (folder / "empty.mp4").write_bytes(b"")
    _extract(load_items(folder), tmp_path / "s")
    store = vfx.open_store(tmp_path / "s")
    assert store.video_ids("failed") == ["empty"] and "empty" not in store and len(store) == 2
    with h5py.File(tmp_path / "s" / "index.h5", "r") as index:
        assert sorted(index["videos"]) == ["ok0", "ok1"]
        catalog = index["catalog"]
        assert catalog["failures/video_id"].asstr()[()].tolist() == ["empty"]
        assert "empty.mp4: empty file" in catalog["failures/reason"].asstr()[0]
    # the retried failure fails again in a later shard: still one row per video
    _extract(load_items(folder), tmp_path / "s", retry_failed=True)
    store = vfx.open_store(tmp_path / "s")
    assert store.video_ids("failed") == ["empty"] and store.recorded.shard("empty") == 2


def _schema1_store(path, frames):
    """A store as vfx wrote it before schema 2: shards/shard-NNNNN.h5 and a ledger per shard."""
    (path / "shards").mkdir(parents=True)
    (path / "ledger").mkdir()
    with h5py.File(path / "shards" / "shard-00000.h5", "w") as h5:
        h5.attrs.update({"kind": "frames", "schema_version": 1, "shard": 0})
        g = h5.create_group("videos/v0")
        g["frames"] = frames
        g["frame_index"] = np.arange(len(frames), dtype=np.int32)
        g.attrs.update({"video_id": "v0", "source_path": "/d/v0.mkv"})
    ledger = {"shard": 0, "file": "shards/shard-00000.h5", "videos": {"v0": {"status": "done"},
                                                                      "bad": {"status": "failed", "reason": "bad.mp4: empty file"}}}
    (path / "ledger" / "shard-00000.json").write_text(json.dumps(ledger))
    manifest = {"kind": "frames", "schema_version": 1, "vfx_version": "0.3.0", "params": FramesStage(RAW).provenance(),
                "created": "2026-01-01T00:00:00+0000"}
    from vfx.store.layout import params_hash

    manifest["params_hash"] = params_hash(manifest["params"])
    (path / "vfx-store.json").write_text(json.dumps(manifest))


def test_schema1_stores_open_read_only_and_a_writer_says_what_to_do(tiny_dataset, tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    _schema1_store(tmp_path / "old", frames)
    store = vfx.open_store(tmp_path / "old")
    assert store.video_ids() == ["v0"] and store.failures() == {"bad": "bad.mp4: empty file"}
    np.testing.assert_array_equal(store.read_frames("v0"), frames)
    with pytest.raises(UsageError, match=r"old: a schema-1 store \(vfx 0.3.0\); this vfx reads it but writes schema 2 "
                                         r"only: convert it with `vfx store upgrade .*old`"):
        _extract(load_items(tiny_dataset)[:1], tmp_path / "old")
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["ledger", "shards", "vfx-store.json"]


def test_store_upgrade_converts_schema1_in_place_and_can_be_rerun(tiny_dataset, tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    _schema1_store(tmp_path / "old", frames)
    shard_bytes = (tmp_path / "old" / "shards" / "shard-00000.h5").read_bytes()
    result = CliRunner().invoke(app, ["store", "upgrade", str(tmp_path / "old")])
    assert result.exit_code == 0, result.output
    assert "schema 1 -> 2: 2 videos in 1 shards" in result.stdout
    files = sorted(str(p.relative_to(tmp_path / "old")) for p in (tmp_path / "old").rglob("*") if p.is_file())
    assert files == ["catalog.h5", "index.h5", "shards/0000/shard-0000000.h5", "vfx-store.json"]
    assert (tmp_path / "old" / "shards" / "0000" / "shard-0000000.h5").read_bytes() == shard_bytes
    store = vfx.open_store(tmp_path / "old")
    assert store.manifest["schema_version"] == 2 and store.failures() == {"bad": "bad.mp4: empty file"}
    np.testing.assert_array_equal(store.read_frames("v0"), frames)
    with h5py.File(tmp_path / "old" / "index.h5", "r") as index:
        np.testing.assert_array_equal(index["videos/v0/frames"][()], frames)
    again = CliRunner().invoke(app, ["store", "upgrade", str(tmp_path / "old")])
    assert again.exit_code == 0 and "already schema 2, nothing to do" in again.stdout
    # and the store takes new videos now
    _extract(load_items(tiny_dataset)[:2], tmp_path / "old")
    assert len(vfx.open_store(tmp_path / "old")) == 3


def test_store_on_object_storage_round_trips(tiny_dataset, tmp_path, s3):
    """Writer and reader through fsspec on a real S3 server (moto): the same frames as a local store."""
    items = load_items(tiny_dataset)[:3]
    url = s3.url("stores/frames.vfx")
    summary = _extract(items, url)
    assert (summary.done, summary.failed) == (3, 0)
    keys = s3.keys("stores/frames.vfx/")
    assert keys == ["stores/frames.vfx/" + k for k in
                    ["catalog.h5", "index.h5", "shards/0000/shard-0000000.h5", "shards/0000/shard-0000001.h5", "vfx-store.json"]]
    _extract(items, tmp_path / "local")
    remote, local = vfx.open_store(url), vfx.open_store(tmp_path / "local")
    assert remote.video_ids() == local.video_ids() and remote.path == url
    for vid in local.video_ids():
        np.testing.assert_array_equal(remote.read_frames(vid), local.read_frames(vid))
        assert remote.attrs(vid) == local.attrs(vid)
    assert remote.size_bytes() > 0
    info = CliRunner().invoke(app, ["info", url])
    assert info.exit_code == 0 and "videos:   3 done, 0 failed" in info.stdout, info.output
    # a rerun finds everything done and writes nothing
    before = {k: s3.client().head_object(Bucket=s3.bucket, Key=k)["ETag"] for k in keys}
    assert _extract(items, url).skipped == 3
    assert {k: s3.client().head_object(Bucket=s3.bucket, Key=k)["ETag"] for k in keys} == before
