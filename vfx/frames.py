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
from vfx.image import Resize, center_crop
from vfx.sampling import Sampling, select_frames
from vfx.types import VideoItem

FORMATS = ("jpeg", "raw")


@dataclass(frozen=True)
class FrameParams:
    sampling: Sampling = field(default_factory=Sampling)
    resize: Resize = field(default_factory=lambda: Resize(short_side=256))
    crop: tuple[int, int] | None = None  # (width, height) centre crop after resizing
    format: str = "jpeg"
    quality: int = 95

    def __post_init__(self):
        if self.format not in FORMATS:
            raise UsageError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if not 1 <= self.quality <= 100:
            raise UsageError(f"JPEG quality must be in 1..100, got {self.quality}")


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
            stream=self._frames(video, indices),
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
        for raw in video.read_yuv420(indices, window=self.window):
            planes = p.resize.apply_yuv420(raw)
            if p.crop is not None:
                planes = planes.center_crop(*p.crop)
            buffer, offsets = encode_jpegs_yuv420(planes, p.quality)
            # Offsets are global to the video's buffer: shift this window's by the bytes already written,
            # and emit the leading 0 only with the first window.
            first = 0 if total == 0 else 1
            yield {"jpeg": buffer, "jpeg_offsets": offsets[first:] + total}
            total += int(offsets[-1])
        video.close()
