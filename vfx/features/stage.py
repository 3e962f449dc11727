"""The features stage: per video, clips -> one or more backbones -> `features [num_clips, D]` and friends.

Per video group (see vfx/store/FORMAT.md): `features` float32|float16 [num_clips, D] (D = sum of the models'
dims, concatenated in the order the models were given, as the two-stream THUMOS14 I3D features that
ActionFormer uses are rgb then flow), `features_<model>` per model when there are several, `clip_frames`
int32 [num_clips, 2] (first and last source frame of each clip), `clip_timestamps` float64 [num_clips, 2]
(start of the first frame, end of the last), and on request `crop_features` [num_clips, views, D],
`spatial` (one model) or `spatial_<model>` [num_clips, D, T', h, w] of the centre view, and MSNet's
`displacement` [num_clips, T-1, 2, h, w] and `confidence` [num_clips, T-1, 1, h, w] of the centre view, with
`clip_indices` int32 [num_clips, T] (the source frame of every clip step, to draw the maps on).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from vfx.engine.stage import Stage
from vfx.types import VideoOutput
from vfx.errors import UsageError
from vfx.features.clips import FlowStoreSource, FramesStoreSource, Source, VideoPlan, VideoSource, plan_clips, stream_clips
from vfx.features.params import RANDOM_INIT_SEED, ResolvedFeatures
from vfx.features.preprocess import ModelInput, ValueMap
from vfx.features.runner import autocast, precision_note, run_batched
from vfx.store.handles import StoreHandles
from vfx.types import VideoItem

log = logging.getLogger(__name__)


def default_prefetch(batch_size: int) -> int:
    # One batch plus two clips ahead: the next batch is ready when a forward pass ends, and no more is held
    # (a 16-frame 224x224 RGB clip is 9.6 MB as float32; ten crops make it 96 MB).
    return batch_size + 2


class FeaturesStage(Stage):
    kind = "features"

    def __init__(self, resolved: ResolvedFeatures):
        self.resolved = resolved
        self.params = resolved.params
        self.device = "cpu"
        self.device_note: str | None = None
        self._nets: list[Any] | None = None
        self._stores = StoreHandles()

    # -- engine contract ---------------------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        return self.resolved.provenance()

    unit = "clips"

    def resources(self) -> dict[str, float | None]:
        # Without --threads the engine fits the CPUs: the node's CPUs over the workers placed there.
        res: dict[str, float | None] = {"num_cpus": None if self.params.threads is None else float(self.params.threads)}
        if self.params.gpus_per_worker > 0:
            res["num_gpus"] = float(self.params.gpus_per_worker)
        return res

    def prepare(self) -> None:
        note = precision_note(self.params.precision, "cpu") if self.params.gpus_per_worker <= 0 else None
        if note:
            log.warning(note)  # in the driver, where it is seen; the store's `device_note` keeps it too

    def set_threads(self, threads: int) -> None:
        self._threads = threads

    def setup(self) -> None:
        import torch

        from vfx.models import create_model

        import cv2

        p = self.params
        threads = p.threads if p.threads is not None else getattr(self, "_threads", None)
        if threads is not None:
            torch.set_num_threads(threads)
        # Resizing runs in the prefetch thread next to torch's threads: OpenCV's own pool would oversubscribe.
        cv2.setNumThreads(1)
        if p.gpus_per_worker > 0 and torch.cuda.is_available():
            self.device = "cuda"
        elif p.gpus_per_worker > 0:
            self.device = "cpu"
            self.device_note = (
                f"--gpus-per-worker {p.gpus_per_worker:g} was given but torch sees no CUDA device in this worker "
                f"(torch {torch.__version__}, cuda available: False): running on CPU"
            )
            log.warning(self.device_note)
        note = precision_note(p.precision, self.device)
        if note:
            self.device_note = f"{self.device_note}; {note}" if self.device_note else note
        nets = []
        for m in self.resolved.models:
            # Random weights are for tests: seeded, so that every worker and every run has the same ones,
            # without touching the caller's global RNG (the serial engine runs this in the caller's process).
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_INIT_SEED)
                net = create_model(m.name, weights=m.choice.weights, **dict(m.choice.kwargs))
            nets.append(net.to(self.device).eval())
        self._nets = nets
        if self.resolved.random_init:
            log.warning("%s: RANDOM weights, features for testing only", ", ".join(self.resolved.random_init))

    def process(self, item: VideoItem) -> VideoOutput:
        ((_, result),) = list(self.process_many([item]))
        if isinstance(result, Exception):
            raise result
        # Materialise the stream: `process` of one video is for tests and interactive use.
        chunks = list(result.stream) if result.stream is not None else []
        for name in chunks[0] if chunks else ():
            result.datasets[name] = np.concatenate([c[name] for c in chunks])
        result.stream = None
        return result

    def process_many(self, items: Iterable[VideoItem]) -> Iterator[tuple[VideoItem, VideoOutput | Exception]]:
        if self._nets is None:
            self.setup()
        p = self.params
        prefetch = p.prefetch or default_prefetch(p.batch_size)
        yield from run_batched(list(items), self._open_video, self._infer, p.batch_size, prefetch, self._output)

    # -- per video -----------------------------------------------------------------------------------------
    def _store(self, path: str):
        return self._stores.get(path)

    def _sources(self, item: VideoItem) -> list[Source]:
        p = self.params
        sp = p.spatial
        sources: list[Source] = []
        if "rgb" in self.resolved.modalities:
            if p.from_frames is not None:
                sources.append(FramesStoreSource(self._store(p.from_frames), item.video_id, sp.short_side, sp.interpolation))
            else:
                sources.append(VideoSource(item, sp.short_side, sp.interpolation, p.window))
        if "flow" in self.resolved.modalities:
            assert p.from_flow is not None  # resolve() refuses flow models without a flow store
            path = item.path if item.path and os.path.isfile(item.path) else None
            sources.append(FlowStoreSource(self._store(p.from_flow), item.video_id, sp.short_side, sp.interpolation, path))
        return sources

    def _open_video(self, item: VideoItem):
        p = self.params
        sources = self._sources(item)
        try:
            plan = plan_clips(sources, self.resolved.clips)
            modalities = [s.modality for s in sources]
            inputs = []
            for m in self.resolved.models:
                fn = ModelInput(ValueMap.for_model(m.spec, p.flow_clip), p.spatial.crop, m.crop_size, m.modality == "flow")
                inputs.append((modalities.index(m.modality), fn))
        except BaseException:
            for s in sources:
                s.close()
            raise
        clips = (arrays for _, arrays in stream_clips(plan, sources, inputs, p.window))

        def close() -> None:
            for s in sources:
                s.close()

        return plan, clips, close

    def _output(self, item: VideoItem, plan: VideoPlan, stream: Iterator[dict[str, np.ndarray]]) -> VideoOutput:
        models = self.resolved.models
        attrs = dict(plan.attrs)
        attrs.update(
            models=[m.name for m in models],
            feature_dims=[m.feature_dim for m in models],
            feature_dim=sum(m.feature_dim for m in models),
            views=self.params.spatial.num_views,
            device=self.device,
        )
        if self.device_note:
            attrs["device_note"] = self.device_note
        datasets = {"clip_frames": plan.clip_frames(), "clip_timestamps": plan.clip_timestamps()}
        if self.params.motion_maps:
            # Every source frame of every clip (segments are sparse): what vfx/show/motion.py draws on.
            datasets["clip_indices"] = plan.common[plan.positions].astype(np.int32)
        clips = len(datasets["clip_frames"])
        return VideoOutput(datasets=datasets, attrs=attrs, stream=self.reported(stream, clips, _clips_in))

    # -- inference -------------------------------------------------------------------------------------------
    def _infer(self, batches: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Per model `float32 [B, V, C, T, h, w]` -> the stored arrays of B clips."""
        import torch

        assert self._nets is not None
        p = self.params
        dtype = np.float16 if p.feature_dtype == "float16" else np.float32
        out: dict[str, np.ndarray] = {}
        pooled = []
        several = len(self._nets) > 1
        device_type = "cuda" if self.device == "cuda" else "cpu"
        with torch.inference_mode(), autocast(p.precision, device_type):
            for m, net, x_np in zip(self.resolved.models, self._nets, batches):
                b, v = x_np.shape[:2]
                x = torch.from_numpy(x_np).reshape(b * v, *x_np.shape[2:]).to(self.device, non_blocking=True)
                if p.keep_spatial:
                    maps = net.forward_feature_maps(x)
                    feats = net.pool_features(maps)
                    spatial = maps.reshape(b, v, *maps.shape[1:])[:, 0]
                    out["spatial_" + m.name if several else "spatial"] = spatial.float().cpu().numpy().astype(dtype)
                else:
                    feats = net.forward_features(x)
                feats_bvd = feats.float().reshape(b, v, -1)
                pooled.append(feats_bvd)
                if p.motion_maps and m.has_motion_maps:
                    centre = x.reshape(b, v, *x.shape[1:])[:, 0]
                    disp, conf = net.motion_maps(centre)
                    out["displacement"] = disp.float().cpu().numpy().astype(dtype)
                    out["confidence"] = conf.float().cpu().numpy().astype(dtype)
        all_views = torch.cat(pooled, dim=2)  # [B, V, D]
        out["features"] = all_views.mean(dim=1).cpu().numpy().astype(dtype)
        if several:
            for m, f in zip(self.resolved.models, pooled):
                out[f"features_{m.name}"] = f.mean(dim=1).cpu().numpy().astype(dtype)
        if p.spatial.crop_reduce == "keep" and p.spatial.num_views > 1:
            out["crop_features"] = all_views.cpu().numpy().astype(dtype)
        return out


def check_devices(params, engine: str) -> None:
    """A GPU asked for where torch has none: clear message for in-process runs (Ray checks its cluster)."""
    if params.gpus_per_worker <= 0 or engine != "serial":
        return
    import torch

    if not torch.cuda.is_available():
        raise UsageError(
            f"--gpus-per-worker {params.gpus_per_worker:g}: torch sees no CUDA GPU on this machine "
            f"(torch {torch.__version__}); use --gpus-per-worker 0 to run on CPU"
        )


def _clips_in(chunk: dict[str, np.ndarray]) -> int:
    # Every array of a chunk has one row per clip of the batch that belongs to this video.
    return len(next(iter(chunk.values()))) if chunk else 0
