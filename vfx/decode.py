"""Video decoding with decord: probe a file, read frames by index or by timestamp in bounded windows.

decord is the decoder the action-recognition tool chain (mmaction2, TSM, video_features) standardised on; it
seeks by frame index and reports per-frame presentation times, which fixed-fps sampling needs for
variable-frame-rate files.

Pixels at full size are read with OpenCV's FFmpeg capture instead: after a `get_batch`, decord's decoder
thread keeps decoding ahead into an unbounded queue while the caller works on the frames, so a slow consumer
(a network, TV-L1) holds ever more of a long video in memory (dmlc/decord#208; measured: peak RSS of
`vfx features` on a 5-minute video 2.0-3.6 GB, growing with the length). The capture decodes only what is
asked for. Both use FFmpeg's decoder and swscale's conversion, so the pixels are the same; each frame the
capture delivers is checked against decord's timestamp of that index, and any disagreement (a seek that
lands elsewhere, a failed grab) hands the rest of the file back to decord. decord still probes (frame
count, per-frame timestamps) and does the in-decoder scaling of `scale_to`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from vfx.errors import VideoError

#: Frames decoded per call: bounds decoder memory whatever the video length
#: (64 frames of 1080p RGB are ~400 MB less than a whole 10-minute video).
DEFAULT_WINDOW = 32

#: Forward jumps up to this many frames are decoded through by the capture; longer ones (and backward ones)
#: seek, which decodes from the previous keyframe, typically up to 250 frames back.
MAX_SEQUENTIAL_GAP = 250


def decoder_version() -> str:
    import decord

    return f"decord {decord.__version__}"


@dataclass(frozen=True)
class VideoInfo:
    path: str
    num_frames: int
    fps: float
    width: int
    height: int
    duration_sec: float
    timestamps_sec: np.ndarray  # float64 [num_frames], presentation time of each frame


def _open(path: str, num_threads: int = 1):
    import decord

    if not os.path.exists(path):
        raise VideoError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    try:
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
    except (decord.DECORDError, RuntimeError) as exc:
        raise VideoError(f"{path}: {_first_line(exc)}") from None
    if len(reader) == 0:
        raise VideoError(f"{path}: the video stream has no frames")
    return reader


def _first_line(exc: BaseException) -> str:
    """decord's errors carry a C++ source location and a log prefix; keep the part a user can act on."""
    text = str(exc)
    if "cannot find video stream" in text:
        return "no video stream: audio-only or not a video"
    if text.startswith("Error reading"):
        return "the container could not be parsed: not a video, or truncated/corrupt"
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("[bt]")]
    last = lines[0] if lines else type(exc).__name__
    return last.split(": ", 1)[-1][:200] if last.startswith("[") else last[:200]


def probe(path: str) -> VideoInfo:
    """Frame count, fps, size, duration and per-frame timestamps, without decoding pixels."""
    reader = _open(str(path))
    return _info(str(path), reader)[0]


def _info(path: str, reader) -> tuple[VideoInfo, bool]:
    """The video's info, and whether decord's pixels can be used (see `_frame_size`)."""
    num_frames = len(reader)
    height, width, channels = _frame_size(reader)
    fps = float(reader.get_avg_fps())
    try:
        stamps = reader.get_frame_timestamp(np.arange(num_frames))[:, 0].astype(np.float64)
    except Exception:  # noqa: BLE001 - some containers lack per-frame times; fall back to the nominal rate
        stamps = np.arange(num_frames, dtype=np.float64) / max(fps, 1e-6)
    duration = float(stamps[-1] + 1.0 / fps) if fps > 0 else float(stamps[-1])
    return VideoInfo(path, num_frames, fps, width, height, duration, stamps), channels == 3


def _frame_size(reader) -> tuple[int, int, int]:
    """(height, width, channels) of frame 0 as decord delivers it.

    decord 0.6 mis-copies frames of some widths (16, 24, 48 and 72 px wide streams come out with 4 "channels": a
    row-alignment bug); such files are then read with OpenCV's capture only."""
    # decord exposes the stream size without decoding through the first frame's shape only after a read;
    # reading frame 0 is cheap and also proves the stream decodes at all.
    import decord

    try:
        frame = reader[0]
    except decord.DECORDError as exc:
        raise VideoError(f"cannot decode the first frame ({_first_line(exc)})") from None
    reader.seek(0)
    return int(frame.shape[0]), int(frame.shape[1]), int(frame.shape[2])


class VideoFile:
    """An open video: its `info` and windowed reads. Use one per worker and video; not thread-safe."""

    def __init__(self, path: str, num_threads: int = 1):
        self.path = str(path)
        self._num_threads = num_threads
        self._reader = _open(self.path, num_threads)
        try:
            self.info, decord_pixels_ok = _info(self.path, self._reader)
        except VideoError as exc:
            raise VideoError(f"{self.path}: {exc}") from None
        self._capture_only = not decord_pixels_ok
        self._scaled = False
        self._capture: _Capture | None = None
        self._capture_usable = True

    def scale_to(self, width: int, height: int) -> None:
        """Make later reads return frames scaled to width x height by the decoder itself, where it can.

        FFmpeg's swscale (bicubic, what `ffmpeg -vf scale` uses) then works on the decoded YUV picture
        before the RGB conversion, which is about twice as fast on HD sources as converting the full-size
        frame to RGB and resizing it with OpenCV.
        """
        import decord

        if (width, height) == (self.info.width, self.info.height) or self._capture_only:
            return
        scaled = decord.VideoReader(self.path, ctx=decord.cpu(0), num_threads=self._num_threads,
                                    width=width, height=height)
        try:
            # decord 0.6 fails to copy out some scaled widths (16, 24, 48, 72, ...: a row-alignment bug);
            # keep the unscaled reader then, and the caller's software resize does the work.
            if scaled.get_batch([0]).shape[1:] != (height, width, 3):
                return
        except decord.DECORDError:
            return
        scaled.seek(0)
        self._reader = scaled
        self._scaled = True

    def read(self, indices: np.ndarray, window: int = DEFAULT_WINDOW, order: str = "rgb") -> Iterator[np.ndarray]:
        """Yield uint8 `frames_thwc` chunks of at most `window` frames, in the order of `indices`.

        `order="bgr"` gives OpenCV's channel order, for callers that hand the frames straight to OpenCV (JPEG
        encoding): the capture then skips two colour conversions per frame.
        """
        import decord

        if order not in ("rgb", "bgr"):
            raise ValueError(f"order must be 'rgb' or 'bgr', got {order!r}")
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self.info.num_frames):
            raise VideoError(f"{self.path}: frame index out of range [0, {self.info.num_frames})")
        for start in range(0, len(indices), window):
            chunk = indices[start : start + window]
            frames = self._read_capture(chunk, order) if chunk.size else None
            if frames is not None:
                yield frames
                continue
            try:
                frames = self._reader.get_batch(chunk.tolist()).asnumpy()
            except decord.DECORDError as exc:
                raise VideoError(
                    f"{self.path}: decoding failed near frame {int(chunk[0])} ({_first_line(exc)}); "
                    "the file is probably truncated or corrupt"
                ) from None
            if order == "bgr":
                import cv2

                for frame in frames:
                    cv2.cvtColor(frame, cv2.COLOR_RGB2BGR, dst=frame)
            yield frames

    def _read_capture(self, chunk: np.ndarray, order: str) -> np.ndarray | None:
        """`chunk` (any order, repeats allowed) through the capture, or None where decord must read it."""
        if not self._capture_only and (self._scaled or not self._capture_usable):
            return None
        wanted, inverse = np.unique(chunk, return_inverse=True)
        try:
            if self._capture is None:
                self._capture = _Capture(self.path, self.info, self._num_threads)
            frames = self._capture.read(wanted, order)
        except _CaptureDisagrees as exc:
            self.close_capture()
            if self._capture_only:
                raise VideoError(
                    f"{self.path}: decord cannot decode this {self.info.width}-pixel-wide stream and OpenCV's "
                    f"capture disagrees with its frame numbering ({exc})"
                ) from None
            self._capture_usable = False
            return None
        return frames if np.array_equal(wanted, chunk) else frames[inverse]

    def close_capture(self) -> None:
        if self._capture is not None:
            self._capture.close()
            self._capture = None

    def read_times(self, times_sec, window: int = DEFAULT_WINDOW) -> Iterator[np.ndarray]:
        """Like `read`, for the frames on screen at the given presentation times (seconds)."""
        from vfx.sampling import frames_at_times

        return self.read(frames_at_times(self.info.timestamps_sec, times_sec), window)

    def close(self) -> None:
        self._reader = None
        self.close_capture()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _CaptureDisagrees(Exception):
    """The capture cannot deliver a frame exactly as decord numbers it."""


class _Capture:
    """OpenCV's FFmpeg capture, read forwards and seeking where that is cheaper; `next_index` is the frame the
    next grab delivers."""

    def __init__(self, path: str, info: VideoInfo, num_threads: int = 1):
        import cv2

        self._cv2 = cv2
        # Stages run one worker per core, so one decoding thread each (FFmpeg's default is one per core).
        self._cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, int(num_threads)])
        if not self._cap.isOpened():
            raise _CaptureDisagrees(path)
        self._info = info
        self.next_index = 0
        # Half the shortest gap between frames: a delivered frame's time must be nearer its own index's
        # time than any other frame's.
        gaps = np.diff(info.timestamps_sec)
        self._tolerance = 0.5 * float(gaps.min()) if gaps.size and gaps.min() > 0 else 1e-3

    def read(self, chunk: np.ndarray, order: str = "rgb") -> np.ndarray:
        cv2, cap, info = self._cv2, self._cap, self._info
        out = np.empty((len(chunk), info.height, info.width, 3), np.uint8)
        for k, index in enumerate(chunk.tolist()):
            if index < self.next_index or index - self.next_index > MAX_SEQUENTIAL_GAP:
                cap.set(cv2.CAP_PROP_POS_FRAMES, index)  # where it lands is checked by the time below
                self.next_index = index
            while self.next_index <= index:
                if not cap.grab():
                    raise _CaptureDisagrees(f"no frame {self.next_index}")
                self.next_index += 1
            if abs(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 - info.timestamps_sec[index]) > self._tolerance:
                raise _CaptureDisagrees(f"frame {index} is at another time")
            ok, bgr = cap.retrieve(out[k])  # converted straight into the output
            if not ok or bgr is None or bgr.shape != out.shape[1:]:
                raise _CaptureDisagrees(f"frame {index} did not decode to {out.shape[1:]}")
            if not np.shares_memory(bgr, out):
                out[k] = bgr
            if order == "rgb":
                cv2.cvtColor(out[k], cv2.COLOR_BGR2RGB, dst=out[k])
        return out

    def close(self) -> None:
        self._cap.release()


def read_frames(path: str, indices: np.ndarray) -> np.ndarray:
    """All requested frames at once, uint8 [T, H, W, 3] RGB. For short reads; stages use `VideoFile.read`."""
    with VideoFile(path) as video:
        chunks = list(video.read(indices))
    return np.concatenate(chunks) if chunks else np.zeros((0, video.info.height, video.info.width, 3), np.uint8)
