"""What a run costs around the work itself, at 10^4..10^6 videos: the real engine and store, a stage that does no work.

    python scripts/bench_engine.py --videos 100000 [--engine serial|ray] [--workers 2] [--shard-size N] [--shard-mb MB]

A list file (CSV) of N rows, each naming one tiny real video under its own `video_id`, goes through the real
`load_items` and `run_stage` with a stage that decodes nothing and writes one tiny dataset per video. Then the
same run again (everything is recorded: the resume), then `open_store` + `video_ids()`. Each phase runs in a
fresh subprocess so that its peak RSS (`ru_maxrss` of that process) is its own. Measured per phase: wall
seconds of loading the list and of `run_stage`, the driver process's CPU seconds (user + system; Ray's
workers are other processes), peak RSS. Last line, exactly:

    engine: N videos, run X ms/video, driver peak RSS Y MiB, resume Z s, resume RSS W MiB, open+ids V s, files F

`run X ms/video` is the driver's CPU time of the run phase (list loading included) per video; `resume Z s` the
wall time of the whole second run (list loading included); `files F` the files in the store afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vfx.engine import RunOptions, Stage, VideoOutput, run_stage
from vfx.types import VideoItem


class NoopStage(Stage):
    """Writes one 8-byte dataset per video and never opens the video: the engine and store are all that is timed."""

    kind = "frames"
    unit = "frames"

    def provenance(self):
        return {"bench": "noop"}

    def process(self, item: VideoItem) -> VideoOutput:
        return VideoOutput(datasets={"frame_index": np.zeros(2, np.int32)}, attrs={"num_frames": 2})


def tiny_video(folder: Path) -> Path:
    """One real 4-frame video (MJPG in AVI: OpenCV writes it everywhere without ffmpeg)."""
    import cv2

    path = folder / "tiny.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    assert writer.isOpened(), f"cannot write {path}"
    for t in range(4):
        writer.write(np.full((24, 32, 3), 40 * t, np.uint8))
    writer.release()
    return path


def write_list(folder: Path, videos: int) -> Path:
    """`videos.csv`: N rows pointing at the same tiny video, ids v0000000.. (explicit, so they are distinct)."""
    video = tiny_video(folder)
    path = folder / "videos.csv"
    with open(path, "w", encoding="utf-8") as f:
        f.write("video_id,path,label\n")
        width = len(str(videos))
        for n in range(videos):
            f.write(f"v{n:0{width}d},{video.name},c{n % 400}\n")
    return path


def count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _cpu_sec() -> float:
    t = os.times()
    return t.user + t.system


def phase(args) -> dict:
    """One phase in this (fresh) process; returns its measurements."""
    from vfx.sources import load_items

    out: dict = {"phase": args.phase}
    if args.phase == "open":
        import vfx

        started = time.perf_counter()
        store = vfx.open_store(args.store)
        ids = store.video_ids()
        out.update(open_ids_sec=time.perf_counter() - started, ids=len(ids), len_sec=_timed(lambda: len(store)))
    else:
        cpu0, started = _cpu_sec(), time.perf_counter()
        items = load_items(args.list)
        out["load_sec"] = time.perf_counter() - started
        options = RunOptions(engine=args.engine, workers=args.workers, progress=False,
                             **({"shard_size": args.shard_size} if args.shard_size else {}),
                             **({"shard_mb": args.shard_mb} if args.shard_mb else {}))  # fmt: skip
        run_started = time.perf_counter()
        summary = run_stage(NoopStage(), items, args.store, options)
        out.update(run_sec=time.perf_counter() - run_started, wall_sec=time.perf_counter() - started,
                   cpu_sec=_cpu_sec() - cpu0, done=summary.done, skipped=summary.skipped, failed=summary.failed)  # fmt: skip
    out["peak_rss_mib"] = _peak_rss_mib()
    return out


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run_phase(name: str, args, store: Path, list_file: Path) -> dict:
    command = [sys.executable, __file__, "--phase", name, "--store", str(store), "--list", str(list_file),
               "--videos", str(args.videos), "--engine", args.engine]  # fmt: skip
    for flag, value in (("--workers", args.workers), ("--shard-size", args.shard_size), ("--shard-mb", args.shard_mb)):
        if value:
            command += [flag, str(value)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"phase {name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, required=True)
    parser.add_argument("--engine", choices=["serial", "ray"], default="serial")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=None, help="cap on videos per shard (default: the library's)")
    parser.add_argument("--shard-mb", type=float, default=None, help="target MiB per shard (default: the stage's)")
    parser.add_argument("--dir", default=None, help="work folder (default: a temporary one, removed after)")
    parser.add_argument("--phase", choices=["run", "resume", "open"], help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--list", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-engine-", dir=args.dir) as tmp:
        folder = Path(tmp)
        list_file = write_list(folder, args.videos)
        store = folder / "store"
        run = run_phase("run", args, store, list_file)
        assert run["done"] == args.videos, run
        resume = run_phase("resume", args, store, list_file)
        assert resume["skipped"] == args.videos and resume["done"] == 0, resume
        opened = run_phase("open", args, store, list_file)
        assert opened["ids"] == args.videos, opened
        files = count_files(store)
        shards = sum(1 for p in store.rglob("*.h5") if p.name.startswith("shard-"))

    n = args.videos
    print(f"{'phase':<8} {'load s':>8} {'run_stage s':>12} {'wall s':>8} {'driver CPU s':>13} {'ms/video':>9} {'peak RSS MiB':>13}")
    for row in (run, resume):
        print(f"{row['phase']:<8} {row['load_sec']:>8.2f} {row['run_sec']:>12.2f} {row['wall_sec']:>8.2f} "
              f"{row['cpu_sec']:>13.2f} {1000 * row['cpu_sec'] / n:>9.3f} {row['peak_rss_mib']:>13.0f}")  # fmt: skip
    print(f"{'open':<8} {'':>8} {'':>12} {opened['open_ids_sec']:>8.2f} {'':>13} {'':>9} {opened['peak_rss_mib']:>13.0f}"
          f"   (len(store) after opening: {opened['len_sec'] * 1000:.1f} ms)")  # fmt: skip
    print(f"engine {args.engine}, workers {args.workers}, {shards} shard files, {files} files in the store "
          f"({files / max(1, shards):.3f} per shard)")  # fmt: skip
    print(f"engine: {n} videos, run {1000 * run['cpu_sec'] / n:.3f} ms/video, driver peak RSS {run['peak_rss_mib']:.0f} MiB, "
          f"resume {resume['wall_sec']:.2f} s, resume RSS {resume['peak_rss_mib']:.0f} MiB, "
          f"open+ids {opened['open_ids_sec']:.2f} s, files {files}")  # fmt: skip


if __name__ == "__main__":
    main()
