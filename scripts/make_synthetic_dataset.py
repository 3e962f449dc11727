"""Write a synthetic action dataset whose classes differ only by motion (see `vfx/train/synthetic.py`).

    python scripts/make_synthetic_dataset.py OUT_DIR [--videos-per-class 40] [--frames 12] [--size 64x64]
    vfx extract-frames OUT_DIR -o frames --size 64x64
    vfx extract-flow -o flow --from-frames frames
    vfx train-fusion --frames frames --flow flow -o run --val-fraction 0.2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vfx.errors import UsageError  # noqa: E402
from vfx.train.synthetic import CLASSES, CODECS, SyntheticParams, make_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--videos-per-class", type=int, default=40)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", default="64x64", help="WIDTHxHEIGHT of the written videos")
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--codec", choices=sorted(CODECS), default="ffv1")
    ap.add_argument("--classes", default=",".join(CLASSES), help=f"comma-separated subset of {','.join(CLASSES)}")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"error: --size {args.size!r} is not WIDTHxHEIGHT", file=sys.stderr)
        return 2
    try:
        params = SyntheticParams(
            videos_per_class=args.videos_per_class,
            num_frames=args.frames,
            width=width,
            height=height,
            fps=args.fps,
            codec=args.codec,
            seed=args.seed,
            classes=tuple(c.strip() for c in args.classes.split(",") if c.strip()),
        )
        t0 = time.perf_counter()
        rows = make_dataset(args.out_dir, params)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(rows)} videos of {len(params.classes)} classes to {args.out_dir} "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
