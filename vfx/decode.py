"""Video decoding: decord probes a file (frame count, per-frame timestamps); PyAV decodes the pixels.

decord is the decoder the action-recognition tool chain (mmaction2, TSM, video_features) standardised on; it
numbers frames and reports per-frame presentation times, which fixed-fps sampling needs for variable-frame-
rate files. Its pixels are not used by default: after a `get_batch`, decord's decoder thread keeps decoding
ahead into an unbounded queue while the caller works on the frames, so a slow consumer (a network, TV-L1)
holds ever more of a long video in memory (dmlc/decord#208; measured: peak RSS of `vfx features` on a
5-minute video 2.0-3.6 GB, growing with the length). PyAV's decoder decodes only what is asked for, and hands
out its YUV planes without a conversion (the JPEG path encodes them as they are; the RGB path converts them
with rounded BT.601, `vfx.image.rgb_from_yuv420`). Both use FFmpeg's decoder, so the decoded planes are the
same (tests check that); each frame PyAV delivers is numbered by its presentation time against decord's
timestamps, and any disagreement (a seek that lands elsewhere, a frame decord does not count) hands the rest
of the file back to decord. decord also does the in-decoder scaling of `scale_to`. decord's RGB is swscale's
fast conversion, which truncates (about 1.3 grey levels darker than BT.601): frames decord has to deliver
carry that offset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from vfx.errors import VideoError
from vfx.image import Resize, Yuv420, rgb_from_yuv420, yuv420_from_rgb

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
    height, width, channels = _frame_size(reader)
    return _info_of_size(path, reader, width, height), channels == 3


def _info_of_size(path: str, reader, width: int, height: int) -> VideoInfo:
    num_frames = len(reader)
    fps = float(reader.get_avg_fps())
    try:
        stamps = reader.get_frame_timestamp(np.arange(num_frames))[:, 0].astype(np.float64)
    except Exception:  # noqa: BLE001 - some containers lack per-frame times; fall back to the nominal rate
        stamps = np.arange(num_frames, dtype=np.float64) / max(fps, 1e-6)
    duration = float(stamps[-1] + 1.0 / fps) if fps > 0 else float(stamps[-1])
    return VideoInfo(path, num_frames, fps, width, height, duration, stamps)


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
        self._scaled = False
        self._capture: _Capture | None = None
        self._capture_usable = True
        self._decord_ok: bool | None = None  # decord's pixels usable (see `_frame_size`), checked when needed
        try:
            # The frame size comes from the capture's first frame, which the first read then reuses; decord's
            # own first frame is decoded only where decord must deliver pixels (measured: decoding it at
            # every open cost 17 ms on bikes.mp4 and 84 ms on bigbuckbunny.mp4, 5-20 % of the frames stage).
            self.info = self._open_capture()
            if self.info is None:
                self.info, self._decord_ok = _info(self.path, self._reader)
        except VideoError as exc:
            raise VideoError(f"{self.path}: {exc}") from None

    def _open_capture(self) -> VideoInfo | None:
        """Open the capture and decode frame 0 with it: the info, sized as the capture delivers frames
        (upright); None where the capture cannot deliver frame 0 as decord numbers it."""
        info = _info_of_size(self.path, self._reader, 0, 0)
        try:
            capture = _Capture(self.path, info, self._num_threads)
        except _CaptureDisagrees:
            self._capture_usable = False
            return None
        try:
            width, height = capture.upright_size(capture._frame(0))
        except _CaptureDisagrees:
            capture.close()
            self._capture_usable = False
            return None
        capture._info = info = replace(info, width=width, height=height)
        self._capture = capture
        return info

    def _decord_pixels_ok(self) -> bool:
        if self._decord_ok is None:
            try:
                height, width, channels = _frame_size(self._reader)
            except VideoError:
                self._decord_ok = False
            else:
                self._decord_ok = channels == 3 and (width, height) == (self.info.width, self.info.height)
        return self._decord_ok

    def scale_to(self, width: int, height: int) -> None:
        """Make later reads return frames scaled to width x height by the decoder itself, where it can.

        FFmpeg's swscale (bicubic, what `ffmpeg -vf scale` uses) then works on the decoded YUV picture
        before the RGB conversion, which is about twice as fast on HD sources as converting the full-size
        frame to RGB and resizing it with OpenCV.
        """
        import decord

        if (width, height) == (self.info.width, self.info.height) or not self._decord_pixels_ok():
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

    def read_yuv420(self, indices: np.ndarray, window: int = DEFAULT_WINDOW,
                    resize: Resize | None = None) -> Iterator[Yuv420]:
        """Like `read`, as the decoder's own 4:2:0 planes (no RGB conversion: what the JPEG path encodes),
        resized by `resize` if given (straight from the decoder's buffers, without a full-size copy).

        Where decord must deliver the pixels (the capture disagrees with its numbering, or `scale_to` is in
        force), its RGB frames are brought to full-range 4:2:0 planes as a JPEG encoder would.
        """
        for chunk in self._chunks(indices, window):
            planes = self._read_capture(chunk, lambda capture, wanted: capture.read_yuv420(wanted, resize))
            if planes is None:
                planes = yuv420_from_rgb(self._read_decord(chunk))
                if resize is not None:
                    planes = resize.apply_yuv420(planes)
            yield planes

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
        if not chunk.size or self._scaled or not self._capture_usable:
            return None
        wanted, inverse = np.unique(chunk, return_inverse=True)
        try:
            if self._capture is None:
                self._capture = _Capture(self.path, self.info, self._num_threads)
            frames = read(self._capture, wanted)
        except _CaptureDisagrees as exc:
            self.close_capture()
            if not self._decord_pixels_ok():
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
    round trip; RGB is made from those planes by `_frame_rgb` (rounded BT.601, not swscale's truncation).
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
        for k, index in enumerate(chunk.tolist()):
            frame = self._frame(index)
            out[k] = self._upright(_frame_rgb(frame, order), frame)
        return out

    def read_yuv420(self, chunk: np.ndarray, resize: Resize | None = None) -> Yuv420:
        info = self._info
        width, height = (info.width, info.height) if resize is None else resize.output_size(info.width, info.height)
        out = Yuv420.empty(len(chunk), width, height, full_range=False)
        copy = resize if resize is not None else Resize()
        full_range = None
        for k, index in enumerate(chunk.tolist()):
            frame = self._frame(index)
            name = frame.format.name
            frame_full = _is_full_range(frame)
            if name not in ("yuv420p", "yuvj420p"):  # 4:2:2, 4:4:4, 10-bit, grey: swscale brings it to 4:2:0
                levels = "JPEG" if frame_full else "MPEG"
                frame = frame.reformat(format="yuv420p", src_color_range=levels, dst_color_range=levels)
            if full_range is not None and frame_full != full_range:
                raise _CaptureDisagrees(f"frame {index} changes the colour range")
            full_range = frame_full
            y, u, v = (self._upright(_plane(p), frame) for p in frame.planes[:3])
            copy.yuv420_frame_into(y, u, v, out, k)
        return Yuv420(out.y_thw, out.u_thw, out.v_thw, full_range=bool(full_range))

    @staticmethod
    def upright_size(frame) -> tuple[int, int]:
        """(width, height) of a frame as `_upright` turns it."""
        turns = (int(frame.rotation) // 90) % 4
        return (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)

    @staticmethod
    def _upright(pixels: np.ndarray, frame) -> np.ndarray:
        """Turn a frame as its display matrix says (phone videos), as ffmpeg shows them."""
        turns = (int(frame.rotation) // 90) % 4
        return np.rot90(pixels, k=turns) if turns else pixels

    def close(self) -> None:
        self._container.close()


def _plane(plane) -> np.ndarray:
    """A decoder plane as a uint8 [H, W] view of its buffer (rows keep the decoder's stride)."""
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]


def _is_full_range(frame) -> bool:
    # JPEG-range ("yuvj") formats and frames flagged full range (AVCOL_RANGE_JPEG = 2) hold 0..255 levels.
    return frame.format.name.startswith("yuvj") or int(frame.color_range) == 2


def _frame_rgb(frame, order: str) -> np.ndarray:
    """A decoded frame as uint8 [H, W, 3] in `order`, as stored (before any rotation).

    8-bit 4:2:0 (nearly every video) goes through `vfx.image.rgb_from_yuv420`: rounded BT.601, where swscale's
    default conversion truncates (about 1.3 grey levels dark). RGB streams (FFV1 of RGB, PNG) are copied as they
    are; other YUV layouts (4:2:2, 4:4:4, 10-bit) use swscale's accurate mode, unbiased but slower."""
    name = frame.format.name
    if name in ("yuv420p", "yuvj420p"):
        y, u, v = (_plane(p) for p in frame.planes[:3])
        return rgb_from_yuv420(y, u, v, _is_full_range(frame), order)
    pixel_format = "rgb24" if order == "rgb" else "bgr24"
    if frame.format.is_rgb or name.startswith(("gray", "pal")):
        return frame.to_ndarray(format=pixel_format)
    from av.video.reformatter import Interpolation

    accurate = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
    return frame.reformat(format=pixel_format, interpolation=int(accurate)).to_ndarray()


def read_frames(path: str, indices: np.ndarray) -> np.ndarray:
    """All requested frames at once, uint8 [T, H, W, 3] RGB. For short reads; stages use `VideoFile.read`."""
    with VideoFile(path) as video:
        chunks = list(video.read(indices))
    return np.concatenate(chunks) if chunks else np.zeros((0, video.info.height, video.info.width, 3), np.uint8)
