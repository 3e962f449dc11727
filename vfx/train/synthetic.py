"""A synthetic action dataset whose classes differ only by motion, written as real video files.

Every video shows 1-3 textured rectangles over a textured static background. The textures, colours, sizes,
orientations, positions and object count are drawn independently of the class, so a single frame says
nothing about the label; only how the objects move does. Objects wrap around the frame edges (as on a
torus), so their positions are uniformly spread at every time and a frame's layout does not betray the
direction either. Every object in every frame is resampled exactly once (one bilinear warp: rotation about
its centre plus the sub-pixel part of its position, then an integer placement), whatever the class: a
renderer that warped moving objects more often than still ones would leave a blur that tells the class.

The classes are chosen to be invariant under a horizontal flip (the training augmentation flips RGB and
negates flow x): "sideways" moves left or right at random, "spin" turns either way.

| class    | motion of every object                                             |
|----------|--------------------------------------------------------------------|
| rise     | up, `speed` px/frame                                               |
| fall     | down, `speed` px/frame                                             |
| sideways | left or right (one sign per video), `speed` px/frame              |
| spin     | rotation about its centre, `spin_deg` deg/frame, random sense      |
| still    | none (only sensor noise changes)                                   |

Videos are laid out one folder per class (`OUT/<class>/<class>_NNNN.mkv`), which `vfx extract-frames OUT`
reads as labels.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from vfx.errors import UsageError

CLASSES: tuple[str, ...] = ("rise", "fall", "sideways", "spin", "still")

# codec name -> (fourcc, file extension). FFV1 is lossless (decord reads it back bit-exactly); mp4v is lossy
# but readable everywhere.
CODECS: dict[str, tuple[str, str]] = {"ffv1": ("FFV1", ".mkv"), "mp4v": ("mp4v", ".mp4")}


@dataclass(frozen=True)
class SyntheticParams:
    videos_per_class: int = 40
    num_frames: int = 12
    width: int = 64
    height: int = 64
    fps: float = 25.0
    speed_px: tuple[float, float] = (1.0, 2.5)  # per frame, drawn uniformly per video
    spin_deg: tuple[float, float] = (10.0, 20.0)  # per frame, drawn uniformly per video
    object_size_frac: tuple[float, float] = (0.25, 0.45)  # object side / frame short side
    max_objects: int = 3
    noise_std: float = 2.0  # per-frame sensor noise, grey levels
    codec: str = "ffv1"
    seed: int = 0
    classes: tuple[str, ...] = CLASSES

    def __post_init__(self) -> None:
        unknown = sorted(set(self.classes) - set(CLASSES))
        if unknown:
            raise UsageError(f"unknown synthetic classes {unknown}; known: {list(CLASSES)}")
        if self.codec not in CODECS:
            raise UsageError(f"unknown codec {self.codec!r}; choose one of {sorted(CODECS)}")
        if self.num_frames < 2 or self.videos_per_class < 1:
            raise UsageError("need at least 2 frames per video and 1 video per class")
        if min(self.width, self.height) < 16:
            raise UsageError(f"frame size {self.width}x{self.height} is too small (min side 16)")


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth random colour texture, uint8 [H, W, 3]: noise blurred at a random scale, random contrast."""
    noise = rng.normal(0.0, 1.0, (height, width, 3)).astype(np.float32)
    sigma = float(rng.uniform(1.0, 3.0))
    smooth = cv2.GaussianBlur(noise, (0, 0), sigma)
    smooth /= smooth.std() + 1e-6
    base = rng.uniform(60, 196, 3).astype(np.float32)
    contrast = float(rng.uniform(25, 50))
    return np.clip(base + contrast * smooth, 0, 255).astype(np.uint8)


def _sprite(rng: np.random.Generator, side: int) -> tuple[np.ndarray, np.ndarray]:
    """An object on a square canvas with room to rotate: texture [S, S, 3] float32 and mask [S, S], a
    rectangle of side `side` and random aspect (0.6-1) in the middle.

    Rectangles, not discs: a spinning disc's outline does not move, and with a smooth texture its rotation
    is nearly invisible to optical flow, which would make "spin" ambiguous by construction.
    """
    canvas = int(np.ceil(side * np.sqrt(2.0))) + 4
    tex = _texture(rng, canvas, canvas).astype(np.float32)
    mask = np.zeros((canvas, canvas), np.float32)
    short = max(2, int(round(side * rng.uniform(0.6, 1.0))))
    y0, x0 = (canvas - short) // 2, (canvas - side) // 2
    if rng.random() < 0.5:
        mask[y0 : y0 + short, x0 : x0 + side] = 1.0
    else:
        mask[x0 : x0 + side, y0 : y0 + short] = 1.0
    return tex, mask


def _draw(canvas_hwc, tex, mask, centre_xy, angle_deg) -> None:
    """Alpha-composite the sprite, rotated about its centre by `angle_deg`, centred at `centre_xy`
    (wrapping around the frame edges), with one bilinear resampling."""
    h, w = canvas_hwc.shape[:2]
    s = mask.shape[0]
    top_left = np.array(centre_xy) - s / 2.0
    whole = np.floor(top_left).astype(int)
    frac = top_left - whole
    m = cv2.getRotationMatrix2D((s / 2.0, s / 2.0), angle_deg, 1.0)
    m[:, 2] += frac  # the sub-pixel part of the position, in the same warp
    tex_t = cv2.warpAffine(tex, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(mask, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
    rows = (whole[1] + np.arange(s)) % h
    cols = (whole[0] + np.arange(s)) % w
    if s > h or s > w:  # a sprite larger than the frame would overlap itself after wrapping
        raise UsageError(f"objects of {s} px do not fit a {w}x{h} frame; lower object_size_frac")
    region = canvas_hwc[np.ix_(rows, cols)]
    canvas_hwc[np.ix_(rows, cols)] = region * (1.0 - alpha) + tex_t * alpha


def render_video(cls: str, rng: np.random.Generator, p: SyntheticParams) -> np.ndarray:
    """Frames of one video of class `cls`, uint8 RGB [T, H, W, 3]."""
    h, w = p.height, p.width
    background = _texture(rng, h, w).astype(np.float32)
    n_objects = int(rng.integers(1, p.max_objects + 1))
    speed = float(rng.uniform(*p.speed_px))
    velocity = {
        "rise": (0.0, -speed),
        "fall": (0.0, speed),
        "sideways": (speed * float(rng.choice([-1.0, 1.0])), 0.0),
        "spin": (0.0, 0.0),
        "still": (0.0, 0.0),
    }[cls]
    omega = float(rng.uniform(*p.spin_deg)) * float(rng.choice([-1.0, 1.0])) if cls == "spin" else 0.0
    objects = []
    for _ in range(n_objects):
        side = int(round(min(h, w) * rng.uniform(*p.object_size_frac)))
        tex, mask = _sprite(rng, side)
        start = (float(rng.uniform(0, w)), float(rng.uniform(0, h)))
        angle0 = float(rng.uniform(0.0, 360.0))
        objects.append((tex, mask, start, angle0))

    frames = np.empty((p.num_frames, h, w, 3), np.uint8)
    for t in range(p.num_frames):
        canvas = background.copy()
        for tex, mask, (x0, y0), angle0 in objects:
            centre = ((x0 + velocity[0] * t) % w, (y0 + velocity[1] * t) % h)
            _draw(canvas, tex, mask, centre, angle0 + omega * t)
        canvas += rng.normal(0.0, p.noise_std, canvas.shape).astype(np.float32)
        frames[t] = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return frames


def write_video(path: Path, frames_thwc_rgb: np.ndarray, fps: float, codec: str) -> None:
    fourcc, _ = CODECS[codec]
    t, h, w, _ = frames_thwc_rgb.shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        raise UsageError(f"{path}: OpenCV cannot open a {codec} video writer here")
    try:
        for frame in frames_thwc_rgb:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))  # OpenCV writes BGR
    finally:
        writer.release()


def make_dataset(out_dir: str | Path, p: SyntheticParams) -> list[dict]:
    """Write the dataset to `out_dir/<class>/` and `out_dir/manifest.json`; return the manifest rows.

    Each video draws from its own generator seeded with (seed, class index, video number), so a video's
    content does not depend on how many other videos are made.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _, ext = CODECS[p.codec]
    rows = []
    for ci, cls in enumerate(p.classes):
        (out / cls).mkdir(exist_ok=True)
        for i in range(p.videos_per_class):
            rng = np.random.default_rng([p.seed, CLASSES.index(cls), i])
            frames = render_video(cls, rng, p)
            path = out / cls / f"{cls}_{i:04d}{ext}"
            write_video(path, frames, p.fps, p.codec)
            rows.append({"path": str(path.relative_to(out)), "label": cls, "num_frames": p.num_frames})
    manifest = {"params": asdict(p), "classes": list(p.classes), "videos": rows}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return rows
