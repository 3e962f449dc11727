"""The flow stage: frames (decoded from videos, or read from a frames store) -> flow fields in a store.

Per video, under `/videos/<video_id>/` (names the store reader relies on, see `Store.read_flow`):
- `flow` uint8 or float16 [N, H, W, 2] (x, y), or for format "jpeg" `flow_jpeg` (2N grayscale JPEGs in the
  order x0, y0, x1, y1, ...) with `flow_jpeg_offsets` int64 [2N+1];
- `flow_pairs` int32 [N, 2]: source frame numbers of the two frames of each field (frame k and k + step
  of the sequence the flow was computed on, as denseflow pairs them);
- attributes `flow_format`, `bound`, `step`, `width`, `height`, `num_flows`, `backend`, `device`.
The store's provenance holds the backend, all its parameters, the bound, step, size and format.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from vfx.device import resolve_device
from vfx.engine.stage import Stage
from vfx.errors import UsageError, VideoError
from vfx.flow.params import FlowParams
from vfx.flow.quantize import encode_flow_jpeg, quantize
from vfx.store.handles import StoreHandles
from vfx.types import VideoItem, VideoOutput

log = logging.getLogger(__name__)

#: Frames decoded (or read from a frames store) per step of the stream.
WINDOW = 32


def make_backend(params: FlowParams, device: str = "cpu"):
    """The callable (frames0_bhw uint8, frames1_bhw uint8) -> float32 [B, H, W, 2] of `params.backend`."""
    if params.backend == "opencv":
        from vfx.flow.opencv_backend import OpenCVTVL1

        return OpenCVTVL1(params.tvl1)
    if params.backend == "farneback":
        from vfx.flow.opencv_backend import Farneback

        return Farneback(params.farneback)
    if params.backend == "dis":
        from vfx.flow.opencv_backend import DIS

        return DIS(params.dis)
    from vfx.flow.tvl1_torch import TVL1Torch

    model = TVL1Torch(params.tvl1, device=device)

    def run(frames0_bhw, frames1_bhw):
        return model(frames0_bhw, frames1_bhw).cpu().numpy()

    return run


def to_gray(frames_thwc: np.ndarray) -> np.ndarray:
    """RGB frames -> uint8 [T, H, W] gray with OpenCV's weights (what cv2-based flow tools feed TV-L1)."""
    if frames_thwc.ndim == 3:
        return frames_thwc
    gray = np.empty(frames_thwc.shape[:3], np.uint8)
    for i, frame in enumerate(frames_thwc):
        cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY, dst=gray[i])
    return gray


def flow_stream(gray_chunks: Iterator[tuple[np.ndarray, np.ndarray]], backend, params: FlowParams
                ) -> Iterator[dict[str, np.ndarray]]:
    """Flow for consecutive chunks of (gray uint8 [T, H, W], source frame numbers [T]).

    Pairs are (k, k + step) over the whole sequence; the last `step` frames of a chunk are carried into
    the next one, so chunk borders change nothing. Yields dicts of arrays to append to the video's group.
    """
    step = params.step
    carry_frames = np.zeros((0, 0, 0), np.uint8)
    carry_index = np.zeros(0, np.int64)
    jpeg_total = 0
    for frames, index in gray_chunks:
        frames = np.concatenate([carry_frames, frames]) if len(carry_frames) else frames
        index = np.concatenate([carry_index, index])
        n = len(frames) - step
        for start in range(0, max(n, 0), params.batch_size):
            stop = min(start + params.batch_size, n)
            flow = backend(frames[start:stop], frames[start + step : stop + step])
            pairs = np.stack([index[start:stop], index[start + step : stop + step]], axis=1).astype(np.int32)
            chunk: dict[str, np.ndarray] = {"flow_pairs": pairs}
            if params.format == "float16":
                chunk["flow"] = flow.astype(np.float16)
            elif params.format == "uint8":
                chunk["flow"] = quantize(flow, params.bound)
            else:
                buffer, offsets = encode_flow_jpeg(flow, params.bound, params.jpeg_quality)
                # Offsets are global to the video: shift by the bytes already written, and emit the leading
                # 0 only once.
                first = 0 if jpeg_total == 0 else 1
                chunk["flow_jpeg"] = buffer
                chunk["flow_jpeg_offsets"] = offsets[first:] + jpeg_total
                jpeg_total += int(offsets[-1])
            yield chunk
        carry_frames = frames[-step:]
        carry_index = index[-step:]


def _build_kernels() -> None:
    from vfx.flow.tvl1_native import KernelBuildError, load

    try:
        load()
    except KernelBuildError as exc:
        log.warning("the torch TV-L1 backend runs on eager PyTorch kernels, several times slower: %s", exc)


class FlowStage(Stage):
    kind = "flow"
    unit = "pairs"

    def __init__(self, params: FlowParams = FlowParams()):
        self.params = params
        self._backend = None
        self._device = "cpu"
        self._stores = StoreHandles()

    def provenance(self) -> dict[str, Any]:
        return self.params.provenance()

    def resources(self) -> dict[str, float]:
        if self.params.backend == "torch" and resolve_device(self.params.device) == "cuda":
            return {"num_cpus": 1, "num_gpus": 1}
        return {"num_cpus": 1}

    def prepare(self) -> None:
        if self.params.backend != "torch":
            return
        if resolve_device(self.params.device) == "cuda":
            # Workers' output does not reach the user: say here what their first batch waits for.
            log.warning("torch TV-L1 on CUDA: each worker's first batch compiles its kernels with torch.compile "
                        "(a one-off wait per process; VFX_NO_COMPILE=1 runs eager kernels without it)")
            return
        # The CPU kernels are built once per machine (about a second), here rather than by every worker at once;
        # in the background, while the workers start (and import torch): they wait for this build if it is
        # not done when they first need the kernels (a lock file, or in-process the module's lock).
        threading.Thread(target=_build_kernels, name="vfx-tvl1-build", daemon=True).start()

    def setup(self) -> None:
        import torch

        # One worker per core: thread pools inside a worker would only oversubscribe the cores.
        cv2.setNumThreads(1)
        torch.set_num_threads(1)
        self._device = resolve_device(self.params.device) if self.params.backend == "torch" else "cpu"
        self._backend = make_backend(self.params, self._device)

    def __getstate__(self):
        return {"params": self.params, "_backend": None, "_device": "cpu", "_stores": StoreHandles()}

    def process(self, item: VideoItem) -> VideoOutput:
        if self._backend is None:
            self.setup()
        p = self.params
        if p.from_frames:
            chunks, num_frames, size = self._from_store(item)
        else:
            chunks, num_frames, size = self._from_video(item)
        if num_frames <= p.step:
            raise VideoError(f"{item.path}: {num_frames} frame(s) selected, flow with step {p.step} needs at "
                             f"least {p.step + 1}")
        width, height = size
        attrs = {
            "flow_format": p.format,
            "bound": float(p.bound),
            "step": p.step,
            "width": width,
            "height": height,
            "num_flows": num_frames - p.step,
            "backend": p.backend,
            "device": self._device,
        }
        stream = flow_stream(chunks, self._backend, p)
        return VideoOutput(attrs=attrs, stream=self.reported(stream, num_frames - p.step, lambda c: len(c["flow_pairs"])))

    # -- inputs ---------------------------------------------------------------------------------------------
    def _window(self) -> int:
        # Whole batches per chunk (a GPU wants 64 pairs at once), yet bounded memory for long videos.
        return max(WINDOW, self.params.batch_size + self.params.step)

    def _from_video(self, item: VideoItem):
        from vfx.decode import VideoFile
        from vfx.sampling import Sampling, select_frames

        video = VideoFile(item.path)
        info = video.info
        indices = select_frames(Sampling(), info.timestamps_sec, start_sec=item.start_sec, end_sec=item.end_sec,
                                key=item.video_id)
        resize = self.params.resize
        size = resize.output_size(info.width, info.height)

        def chunks():
            start = 0
            for raw in video.read(indices, window=self._window()):
                gray = resize.apply(to_gray(raw))
                yield gray, indices[start : start + len(gray)].astype(np.int64)
                start += len(gray)
            video.close()

        return chunks(), len(indices), size

    def _from_store(self, item: VideoItem):
        path = self.params.from_frames
        store = self._stores.get(path)
        try:
            frame_index = store.frame_index(item.video_id).astype(np.int64)
            attrs = store.attrs(item.video_id)
        except KeyError as exc:
            raise VideoError(f"{path}: {exc.args[0] if exc.args else exc}") from None
        resize = self.params.resize
        size = resize.output_size(int(attrs["width"]), int(attrs["height"]))

        def chunks():
            window = self._window()
            for start in range(0, len(frame_index), window):
                stop = min(start + window, len(frame_index))
                frames = store.read_frames(item.video_id, np.arange(start, stop))
                yield resize.apply(to_gray(frames)), frame_index[start:stop]

        return chunks(), len(frame_index), size
