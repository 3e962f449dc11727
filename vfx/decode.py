"""Video decoding: decord probes a file (frame count, per-frame timestamps); PyAV decodes the pixels.

decord is the decoder the action-recognition tool chain (mmaction2, TSM, video_features) standardised on; it
numbers frames and reports per-frame presentation times, which fixed-fps sampling needs for variable-frame-
rate files. Its pixels are not used by default: after a `get_batch`, decord's decoder thread keeps decoding
ahead into an unbounded queue while the caller works on the frames, so a slow consumer (a network, TV-L1)
holds ever more of a long video in memory (dmlc/decord#208; measured: peak RSS of `vfx features` on a
5-minute video 2.0-3.6 GB, growing with the length). PyAV's decoder decodes only what is asked for, and hands
out its YUV planes without a conversion (the JPEG path encodes them as they are). Both use FFmpeg's decoder
and swscale's conversion, so the RGB pixels are the same (tests check that); each frame PyAV delivers is
numbered by its presentation time against decord's timestamps, and any disagreement (a seek that lands
elsewhere, a frame decord does not count) hands the rest of the file back to decord. decord also does the
in-decoder scaling of `scale_to`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from vfx.errors import VideoError
from vfx.image import Yuv420, yuv420_from_rgb

#: Frames decoded per call: bounds decoder memory whatever the video length
#: (64 frames of 1080p RGB are ~400 MB less than a whole 10-minute video).
DEFAULT_WINDOW = 32

#: Forward jumps up to this many frames are decoded through by the capture; longer ones (and backward ones)
#: seek, which decodes from the previous keyframe, typically up to 250 frames back.
MAX_SEQUENTIAL_GAP = 250


def decoder_version() -> str:
    import av
    import decord

    return f"decord {decord.__version__}, PyAV {av.__version__}"


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
    row-alignment bug); such files are then read with the PyAV capture only."""
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

        `order="bgr"` gives OpenCV's channel order, for callers that hand the frames to OpenCV.
        """
        if order not in ("rgb", "bgr"):
            raise ValueError(f"order must be 'rgb' or 'bgr', got {order!r}")
        for chunk in self._chunks(indices, window):
            frames = self._read_capture(chunk, lambda capture, wanted: capture.read(wanted, order))
            if frames is None:
                frames = self._read_decord(chunk)
                if order == "bgr":
                    frames = np.ascontiguousarray(frames[..., ::-1])
            yield frames

    def read_yuv420(self, indices: np.ndarray, window: int = DEFAULT_WINDOW) -> Iterator[Yuv420]:
        """Like `read`, as the decoder's own 4:2:0 planes (no RGB conversion: what the JPEG path encodes).

        Where decord must deliver the pixels (the capture disagrees with its numbering, or `scale_to` is in
        force), its RGB frames are brought to full-range 4:2:0 planes as a JPEG encoder would.
        """
        for chunk in self._chunks(indices, window):
            planes = self._read_capture(chunk, lambda capture, wanted: capture.read_yuv420(wanted))
            yield planes if planes is not None else yuv420_from_rgb(self._read_decord(chunk))

    def _chunks(self, indices: np.ndarray, window: int) -> Iterator[np.ndarray]:
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self.info.num_frames):
            raise VideoError(f"{self.path}: frame index out of range [0, {self.info.num_frames})")
        for start in range(0, len(indices), window):
            yield indices[start : start + window]

    def _read_decord(self, chunk: np.ndarray) -> np.ndarray:
        import decord

        try:
            return self._reader.get_batch(chunk.tolist()).asnumpy()
        except decord.DECORDError as exc:
            raise VideoError(
                f"{self.path}: decoding failed near frame {int(chunk[0])} ({_first_line(exc)}); "
                "the file is probably truncated or corrupt"
            ) from None

    def _read_capture(self, chunk: np.ndarray, read):
        """`read(capture, wanted)` for `chunk` (any order, repeats allowed), or None where decord must read it."""
        if not chunk.size or (not self._capture_only and (self._scaled or not self._capture_usable)):
            return None
        wanted, inverse = np.unique(chunk, return_inverse=True)
        try:
            if self._capture is None:
                self._capture = _Capture(self.path, self.info, self._num_threads)
            frames = read(self._capture, wanted)
        except _CaptureDisagrees as exc:
            self.close_capture()
            if self._capture_only:
                raise VideoError(
                    f"{self.path}: decord cannot decode this {self.info.width}-pixel-wide stream and the "
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
    """FFmpeg's decoder through PyAV, read forwards and seeking where that is cheaper.

    Every decoded frame is numbered by its presentation time against decord's per-frame timestamps, so the
    frame handed out for index i is the one decord calls i; `next_index` is the frame after the last one
    decoded. PyAV's decoder hands out its YUV planes as they are, which the JPEG path encodes without an RGB
    round trip; its BGR conversion is swscale's, pixel for pixel what decord and OpenCV's capture give.
    """

    def __init__(self, path: str, info: VideoInfo, num_threads: int = 1):
        import av

        self._av = av
        try:
            self._container = av.open(path)
            self._stream = self._container.streams.video[0]
        except (av.FFmpegError, IndexError) as exc:
            raise _CaptureDisagrees(f"PyAV cannot open it ({exc})") from None
        # Stages run one worker per core, so one decoding thread each (FFmpeg's default is one per core).
        self._stream.codec_context.thread_count = int(num_threads)
        if num_threads > 1:
            self._stream.thread_type = "AUTO"
        self._time_base = float(self._stream.time_base)
        self._start_sec = (self._stream.start_time or 0) * self._time_base
        self._info = info
        self._frames = self._container.decode(self._stream)
        self._last = None  # (index, frame) of the last decoded frame
        self.next_index = 0
        # Half the shortest gap between frames: a decoded frame's time must be nearer its own index's
        # time than any other frame's.
        gaps = np.diff(info.timestamps_sec)
        self._tolerance = 0.5 * float(gaps.min()) if gaps.size and gaps.min() > 0 else 1e-3

    def _frame(self, index: int):
        """The av.VideoFrame decord numbers `index`, upright."""
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        if index < self.next_index or index - self.next_index > MAX_SEQUENTIAL_GAP:
            self._seek(index)
        while True:
            try:
                frame = next(self._frames)
            except StopIteration:
                raise _CaptureDisagrees(f"no frame {index}") from None
            except self._av.FFmpegError as exc:
                raise _CaptureDisagrees(f"decoding failed before frame {index} ({exc})") from None
            got = self._index_of(frame)
            self._last = (got, frame)
            self.next_index = got + 1
            if got == index:
                return frame
            if got > index:
                raise _CaptureDisagrees(f"frame {index} was skipped (decoded {got} instead)")

    def _seek(self, index: int) -> None:
        """Land on the keyframe at or before `index` (FFmpeg seeks backwards to one); decoding goes on from there."""
        target = round((self._info.timestamps_sec[index] + self._start_sec) / self._time_base)
        try:
            self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        except self._av.FFmpegError as exc:
            raise _CaptureDisagrees(f"cannot seek to frame {index} ({exc})") from None
        self._frames = self._container.decode(self._stream)
        self._last = None
        self.next_index = 0  # unknown until the next frame's time says

    def _index_of(self, frame) -> int:
        if frame.pts is None:
            raise _CaptureDisagrees("a frame without a presentation time")
        t = frame.pts * self._time_base - self._start_sec
        stamps = self._info.timestamps_sec
        k = min(int(np.searchsorted(stamps, t - self._tolerance)), len(stamps) - 1)
        if abs(stamps[k] - t) > self._tolerance:
            raise _CaptureDisagrees(f"a frame at {t:.4f} s, where decord has none")
        return k

    def read(self, chunk: np.ndarray, order: str = "rgb") -> np.ndarray:
        info = self._info
        out = np.empty((len(chunk), info.height, info.width, 3), np.uint8)
        pixel_format = "rgb24" if order == "rgb" else "bgr24"
        for k, index in enumerate(chunk.tolist()):
            frame = self._frame(index)
            out[k] = self._upright(frame.to_ndarray(format=pixel_format), frame)
        return out

    def read_yuv420(self, chunk: np.ndarray) -> Yuv420:
        info = self._info
        y = np.empty((len(chunk), info.height, info.width), np.uint8)
        u = np.empty((len(chunk), (info.height + 1) // 2, (info.width + 1) // 2), np.uint8)
        v = np.empty_like(u)
        full_range = None
        for k, index in enumerate(chunk.tolist()):
            frame = self._frame(index)
            name = frame.format.name
            # JPEG-range ("yuvj") formats and frames flagged full range (AVCOL_RANGE_JPEG = 2) hold 0..255 levels.
            frame_full = name.startswith("yuvj") or int(frame.color_range) == 2
            if name not in ("yuv420p", "yuvj420p"):  # 4:2:2, 4:4:4, 10-bit, grey: swscale brings it to 4:2:0
                levels = "JPEG" if frame_full else "MPEG"
                frame = frame.reformat(format="yuv420p", src_color_range=levels, dst_color_range=levels)
            if full_range is not None and frame_full != full_range:
                raise _CaptureDisagrees(f"frame {index} changes the colour range")
            full_range = frame_full
            for plane, dst in zip(frame.planes, (y[k], u[k], v[k])):
                pixels = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
                dst[...] = self._upright(pixels, frame)
        return Yuv420(y, u, v, full_range=bool(full_range))

    @staticmethod
    def _upright(pixels: np.ndarray, frame) -> np.ndarray:
        """Turn a frame as its display matrix says (phone videos), as ffmpeg shows them."""
        turns = (int(frame.rotation) // 90) % 4
        return np.rot90(pixels, k=turns) if turns else pixels

    def close(self) -> None:
        self._container.close()


def read_frames(path: str, indices: np.ndarray) -> np.ndarray:
    """All requested frames at once, uint8 [T, H, W, 3] RGB. For short reads; stages use `VideoFile.read`."""
    with VideoFile(path) as video:
        chunks = list(video.read(indices))
    return np.concatenate(chunks) if chunks else np.zeros((0, video.info.height, video.info.width, 3), np.uint8)
