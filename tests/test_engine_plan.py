"""The plan of a run: what is pending, and shards cut by bytes (estimated from committed shards) within a cap on
videos, smaller with several workers so that none idles; and the compact driver-side types."""

import pickle

import numpy as np
import pytest

import vfx
from vfx.engine import RunOptions, Stage, VideoOutput, run_stage
from vfx.engine.plan import PER_WORKER, PROBE_VIDEOS, ShardPlan, pending
from vfx.errors import UsageError
from vfx.types import VideoItem


def _items(n, start=0):
    return [VideoItem(f"v{i:04d}", f"/d/v{i:04d}.mp4") for i in range(start, start + n)]


class _View:
    """The shape of the store's compact `recorded` view: vectorised status codes, len."""

    def __init__(self, statuses):
        self.statuses = statuses

    def status_codes(self, video_ids):
        return np.array([{None: 0, "done": 1, "failed": 2}[self.statuses.get(v)] for v in video_ids], np.uint8)

    def __len__(self):
        return len(self.statuses)


@pytest.mark.parametrize("as_view", [False, True])
def test_pending_skips_what_is_recorded_and_counts_earlier_failures(as_view):
    items = _items(6)[::-1]  # any order in, sorted out
    statuses = {"v0001": "done", "v0003": "failed", "v0004": "done"}
    recorded = _View(statuses) if as_view else {v: {"status": s} for v, s in statuses.items()}
    work = pending(items, recorded)
    assert [i.video_id for i in work.todo] == ["v0000", "v0002", "v0005"] and work.failed_earlier == 1
    again = pending(items, recorded, retry_failed=True)
    assert [i.video_id for i in again.todo] == ["v0000", "v0002", "v0003", "v0005"] and again.failed_earlier == 0
    assert pending(items, {}).todo == sorted(items, key=lambda i: i.video_id)


def test_a_repeated_video_id_is_refused_with_its_path():
    items = _items(3) + [VideoItem("v0001", "/other/v0001.mp4")]
    with pytest.raises(UsageError, match=r"duplicate video id 'v0001' \(/"):
        pending(items, {})


def test_first_shards_are_probes_then_cut_to_the_target_bytes_within_the_cap():
    plan = ShardPlan(_items(1000), first_shard_id=7, max_videos=300, target_bytes=1_000_000)
    first = plan.next()
    assert first.shard_id == 7 and len(first.items) == PROBE_VIDEOS  # nothing known of the sizes yet
    plan.committed(size_bytes=16 * 10_000, done_videos=16)  # 10 kB per video
    second = plan.next()
    assert second.shard_id == 8 and len(second.items) == 100  # 1 MB / 10 kB
    plan.committed(size_bytes=100 * 1_000, done_videos=100)  # smaller videos: the mean drops to ~2.2 kB
    assert len(plan.next().items) == 300  # the cap wins over ~450 by bytes
    plan.committed(size_bytes=5_000, done_videos=0)  # a shard of failures says nothing about video sizes
    assert plan.bytes_per_video == pytest.approx((160_000 + 100_000) / 116)
    shards = [first, second]
    while plan:
        shards.append(plan.next())
    videos = [i.video_id for s in [first, second] for i in s.items]
    assert len(videos) == len(set(videos))
    assert plan.videos_left == 0 and not plan


def test_several_workers_get_several_shards_each_and_the_tail_shrinks():
    items = _items(18)
    plan = ShardPlan(items, first_shard_id=5, max_videos=16, workers=2)
    shards = []
    while plan:
        shards.append(plan.next())
    assert [s.shard_id for s in shards] == list(range(5, 5 + len(shards)))  # new ids after those on disk
    assert [i for s in shards for i in s.items] == items  # every video once, in order
    assert len(shards) >= 2 * 4 and max(len(s.items) for s in shards) <= -(-18 // (PER_WORKER * 2))
    big = ShardPlan(_items(5000), 0, max_videos=4096, target_bytes=1 << 40, workers=2)
    big.committed(1000, 10)
    sizes = []
    while big:
        sizes.append(len(big.next().items))
    assert sizes[0] == -(-5000 // (PER_WORKER * 2)) and sizes == sorted(sizes, reverse=True) and sizes[-1] == 1
    assert sum(sizes) == 5000 and len(sizes) < 200


def test_a_shard_put_back_comes_first_with_its_id():
    plan = ShardPlan(_items(40), 0, max_videos=10)
    a, b = plan.next(), plan.next()
    plan.put_back(a)
    assert plan.next() == a and plan.next().shard_id == b.shard_id + 1


def test_video_items_are_slotted_and_pickle():
    item = VideoItem("v1", "/d/v1.mp4", label="x", start_sec=1.5)
    assert not hasattr(item, "__dict__")
    assert pickle.loads(pickle.dumps(item)) == item


def test_run_options_shard_mb():
    class S(Stage):
        kind = "frames"
        shard_bytes = 12345

        def provenance(self):
            return {}

        def process(self, item):
            raise NotImplementedError

    assert RunOptions().shard_target_bytes(S()) == 12345
    assert RunOptions(shard_mb=0.5).shard_target_bytes(S()) == 1 << 19
    with pytest.raises(UsageError, match="--shard-mb must be > 0"):
        RunOptions(shard_mb=0)


class _Blob(Stage):
    """64 KiB of incompressible bytes per video."""

    kind = "frames"

    def provenance(self):
        return {"blob": 1}

    def process(self, item):
        rng = np.random.default_rng(int(item.video_id[1:]))
        return VideoOutput(datasets={"blob": rng.integers(0, 255, 64 << 10, dtype=np.uint8)})


def test_a_run_cuts_shards_by_bytes_from_what_it_committed(tmp_path, samples):
    items = [VideoItem(f"v{i:04d}", str(samples["bikes"])) for i in range(40)]
    summary = run_stage(_Blob(), items, tmp_path / "s", RunOptions(engine="serial", progress=False, shard_mb=0.3))
    assert summary.done == 40
    store = vfx.open_store(tmp_path / "s")
    per_file: dict[str, int] = {}
    for video_id in store.video_ids():
        name = store.group(video_id).file.filename
        per_file[name] = per_file.get(name, 0) + 1
    sizes = sorted(per_file.values(), reverse=True)
    # a 16-video probe (~1 MiB), then ~0.3 MiB / 64 KiB = 4 videos a shard
    assert sizes[0] == PROBE_VIDEOS and set(sizes[1:-1]) == {4} and sum(sizes) == 40, sizes
    store.close()
