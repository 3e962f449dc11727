"""The frames stage: decode, sample, resize/crop, and store JPEG bytes (or raw uint8) per video."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vfx.codec import encode_jpegs_yuv420
from vfx.decode import DEFAULT_WINDOW, VideoFile, decoder_version
from vfx.engine.stage import Stage
from vfx.types import VideoOutput
from vfx.errors import UsageError, VideoError
from vfx.image import DEFAULT_SHORT_SIDE, Resize, center_crop, parse_size
from vfx.recipes import one_choice, resolve_options
from vfx.sampling import Sampling, select_frames
from vfx.types import VideoItem

FORMATS = ("jpeg", "raw")


@dataclass(frozen=True)
class FrameParams:
    sampling: Sampling = field(default_factory=Sampling)
    resize: Resize = field(default_factory=lambda: Resize(short_side=DEFAULT_SHORT_SIDE))
    crop: tuple[int, int] | None = None  # (width, height) centre crop after resizing
    format: str = "jpeg"
    quality: int = 95

    def __post_init__(self):
        if self.format not in FORMATS:
            raise UsageError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if not 1 <= self.quality <= 100:
            raise UsageError(f"JPEG quality must be in 1..100, got {self.quality}")

    @classmethod
    def from_options(cls, recipe: str | dict | None = None, **options: Any) -> FrameParams:
        """The parameters of `vfx extract-frames`: its flags as keywords (None: not given) over a recipe's
        `[extract-frames]` table over `OPTION_DEFAULTS`.

        `short_side`, `size` and `keep_size` are one choice: give at most one; the one given replaces the
        recipe's. Sizes are "WxH" text or (width, height).
        """
        sizes = [f"--{n.replace('_', '-')}" for n in SIZE_CHOICE if options.get(n) not in (None, False)]
        if len(sizes) > 1:
            raise UsageError(f"{' and '.join(sizes)} cannot be combined: choose one way to size the frames")
        o = resolve_options("extract-frames", recipe, options, OPTION_DEFAULTS, one_choice(*SIZE_CHOICE))
        how = dict(upscale=bool(o["upscale"]), interpolation=o["interpolation"])
        if o["keep_size"]:
            resize = Resize(**how)
        elif o["size"] is not None:
            resize = Resize(size=parse_size(o["size"]), **how)
        else:
            resize = Resize(short_side=int(o["short_side"]), **how)
        sampling = Sampling.from_options(fps=o["fps"], every=o["every"], segments=o["segments"],
                                         segment_pick=o["segment_pick"], seed=o["seed"])
        crop = None if o["crop"] is None else parse_size(o["crop"])
        return cls(sampling=sampling, resize=resize, crop=crop, format=o["format"], quality=int(o["quality"]))


SIZE_CHOICE = ("short_side", "size", "keep_size")


def _option_defaults() -> dict[str, Any]:
    p = FrameParams()
    return {
        "short_side": p.resize.short_side, "size": None, "keep_size": False, "upscale": p.resize.upscale,
        "interpolation": p.resize.interpolation, "crop": None, "fps": None, "every": None, "segments": None,
        "segment_pick": p.sampling.segment_pick, "seed": p.sampling.seed, "format": p.format, "quality": p.quality,
    }  # fmt: skip


#: Every option of `FrameParams.from_options` (the flags of `vfx extract-frames`) and its default, read from
#: the dataclasses above: the one place they are written.
OPTION_DEFAULTS: dict[str, Any] = _option_defaults()


def size_notice(params: FrameParams, items: list[VideoItem]) -> str | None:
    """What to say at the start of a run whose frame size will not be applied: a short side larger than the
    first readable video's (without `upscale`, such videos keep their size, and the store records that)."""
    resize = params.resize
    if resize.short_side is None or resize.upscale:
        return None
    for item in items[:3]:
        try:
            with VideoFile(item.path) as video:
                info = video.info
        except VideoError:
            continue
        if min(info.width, info.height) < resize.short_side:
            return (f"note: {item.video_id} is {info.width}x{info.height}: videos whose short side is under "
                    f"{resize.short_side} keep their own size (--upscale enlarges them, --size WxH gives exactly WxH)")
        return None
    return None


def _frames_in(chunk: dict[str, np.ndarray]) -> int:
    # JPEG chunks carry one offset per frame (plus the leading 0 in the first chunk, which counts no frame).
    return len(chunk["frames"]) if "frames" in chunk else len(chunk["jpeg_offsets"]) - int(chunk["jpeg_offsets"][0] == 0)


class FramesStage(Stage):
    kind = "frames"

    def __init__(self, params: FrameParams = FrameParams(), window: int = DEFAULT_WINDOW):
        self.params = params
        self.window = window

    def provenance(self) -> dict[str, Any]:
        return {"stage": "frames", **asdict(self.params)}

    def setup(self) -> None:
        import cv2

        # One worker per core: OpenCV's own thread pool would only oversubscribe the cores.
        cv2.setNumThreads(1)

    def process(self, item: VideoItem) -> VideoOutput:
        p = self.params
        video = VideoFile(item.path)
        info = video.info
        indices = select_frames(
            p.sampling, info.timestamps_sec, start_sec=item.start_sec, end_sec=item.end_sec, key=item.video_id
        )
        if len(indices) == 0:
            raise VideoError(
                f"{item.path}: no frames selected (video has {info.num_frames} frames, "
                f"{info.duration_sec:.2f} s; segment {item.start_sec}..{item.end_sec})"
            )
        width, height = p.resize.output_size(info.width, info.height)
        if p.resize.interpolation == "decoder" and p.format == "raw":
            # JPEG frames are resized as planes (OpenCV's bicubic for "decoder", see vfx.image).
            video.scale_to(width, height)
        if p.crop is not None:
            width, height = p.crop
        attrs = {
            "fps": info.fps,
            "source_width": info.width,
            "source_height": info.height,
            "source_num_frames": info.num_frames,
            "duration_sec": info.duration_sec,
            "width": width,
            "height": height,
            "num_frames": len(indices),
            "format": p.format,
            "decoder": decoder_version(),
        }
        return VideoOutput(
            datasets={
                "frame_index": indices.astype(np.int32),
                "timestamp_sec": info.timestamps_sec[indices].astype(np.float64),
            },
            attrs=attrs,
            stream=self.reported(self._frames(video, indices), len(indices), _frames_in),
        )

    def _frames(self, video: VideoFile, indices: np.ndarray) -> Iterator[dict[str, np.ndarray]]:
        """Raw frames go decoder -> RGB -> resize; JPEG frames stay in the decoder's 4:2:0 planes from the
        decoder to the encoder (resized as planes, no RGB round trip): measured in scripts/bench_frames.py,
        1.3x the frames/s of the RGB path at 2 workers, and within 1 grey level of its JPEGs on average."""
        p = self.params
        if p.format == "raw":
            for raw in video.read(indices, window=self.window):
                frames = p.resize.apply(raw)
                if p.crop is not None:
                    frames = center_crop(frames, *p.crop)
                yield {"frames": np.ascontiguousarray(frames)}
            video.close()
            return
        total = 0
        for planes in video.read_yuv420(indices, window=self.window, resize=p.resize):
            if p.crop is not None:
                planes = planes.center_crop(*p.crop)
            buffer, offsets = encode_jpegs_yuv420(planes, p.quality)
            # Offsets are global to the video's buffer: shift this window's by the bytes already written,
            # and emit the leading 0 only with the first window.
            first = 0 if total == 0 else 1
            yield {"jpeg": buffer, "jpeg_offsets": offsets[first:] + total}
            total += int(offsets[-1])
        video.close()
