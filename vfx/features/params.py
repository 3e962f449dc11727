"""Parameters of a feature extraction run, as frozen dataclasses, and their resolution against the models.

`FeatureParams` is what the user chose (CLI flags, a recipe or Python); anything left as None is filled
from the first model's `input_spec` by `resolve()`, which returns the `ResolvedFeatures` a stage runs with.
Everything that changes a stored number is in `ResolvedFeatures.provenance()`, so a rerun with other
values is refused by the store.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vfx.errors import UsageError
from vfx.recipes import one_choice, resolve_options
from vfx.sources.files import is_url

PRECISIONS = ("fp32", "fp16", "bf16")
CROPS = ("center", "three", "ten")
CROP_REDUCES = ("mean", "keep")
FEATURE_DTYPES = ("float32", "float16")
#: Views per clip of each crop mode (ten = five crops and their mirror images, torchvision's TenCrop).
NUM_VIEWS = {"center": 1, "three": 3, "ten": 10}
RANDOM_INIT = "random-init"
#: torch seed of randomly initialised models (features/stage.py), recorded in the store as `init_seed`.
RANDOM_INIT_SEED = 0


class RandomWeightsWarning(UserWarning):
    """A model runs with random weights: its features are meaningless outside of tests."""


@dataclass(frozen=True)
class ModelChoice:
    """One backbone of the run: registry name, checkpoint path (None: random init), builder kwargs.

    `kwargs` are extra keyword arguments of the builder (e.g. `num_classes`, or a small `width` in tests),
    as sorted (key, value) pairs so that the dataclass stays hashable and its repr stable.
    """

    name: str
    weights: str | None = None
    kwargs: tuple[tuple[str, Any], ...] = ()

    @staticmethod
    def of(name: str, weights: str | os.PathLike | None = None, **kwargs: Any) -> ModelChoice:
        return ModelChoice(name, None if weights is None else os.fspath(weights), tuple(sorted(kwargs.items())))


@dataclass(frozen=True)
class ClipParams:
    """Which source frames make each clip. At most one of stride / num_clips / segments.

    dense clips: `clip_len` frames (every `frame_step`-th) starting every `stride` frames (default: back to
    back); uniform: `num_clips` clips of `clip_len` spread over the video; segments: one clip per video made
    of one frame from each of `segments` equal segments (TSN test sampling). Unset values come from the
    first model's input spec (`sampling`, `num_frames`, `frame_step`).
    """

    clip_len: int | None = None
    stride: int | None = None
    num_clips: int | None = None
    segments: int | None = None
    frame_step: int | None = None

    def __post_init__(self) -> None:
        chosen = [n for n, v in (("--stride", self.stride), ("--num-clips", self.num_clips), ("--segments", self.segments)) if v is not None]
        if len(chosen) > 1:
            raise UsageError(f"{' and '.join(chosen)} cannot be combined: choose one way to place clips")
        for name, value in (("--clip-len", self.clip_len), ("--stride", self.stride), ("--num-clips", self.num_clips),
                            ("--segments", self.segments), ("--frame-step", self.frame_step)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.segments is not None and self.clip_len is not None:
            raise UsageError("--segments takes one frame per segment: --clip-len does not apply")


@dataclass(frozen=True)
class SpatialParams:
    """Resize the short side to `short_side` (up or down), then crop `crop_size` squares.

    `short_side` None: the first model's `input_spec.short_side`; `crop_size` None: each model's
    `input_spec.size` (224 with a 256 short side for the ImageNet-style backbones: the test protocol of
    TSN / TSM / I3D feature extractors; 112 with 128 for torchvision's video ResNets). `crop`: one centre crop, three crops along the
    long side, or ten crops (5 + mirrored); `crop_reduce` "mean" averages the views' features, "keep" also
    stores them per view (`crop_features [num_clips, views, D]`).
    """

    short_side: int | None = None
    crop: str = "center"
    crop_size: int | None = None
    crop_reduce: str = "mean"
    interpolation: str = "linear"

    def __post_init__(self) -> None:
        if self.short_side is not None and (
            isinstance(self.short_side, bool) or not isinstance(self.short_side, int) or self.short_side < 1
        ):
            raise UsageError(f"--short-side must be a whole number >= 1, got {self.short_side!r}")
        if self.crop not in CROPS:
            raise UsageError(f"--crop must be one of {', '.join(CROPS)}, got {self.crop!r}")
        if self.crop_reduce not in CROP_REDUCES:
            raise UsageError(f"--crop-reduce must be one of {', '.join(CROP_REDUCES)}, got {self.crop_reduce!r}")
        if self.crop_size is not None:
            if isinstance(self.crop_size, bool) or not isinstance(self.crop_size, int) or self.crop_size < 1:
                raise UsageError(f"--crop-size must be a whole number >= 1, got {self.crop_size!r}")
            if self.short_side is not None and self.crop_size > self.short_side:
                raise UsageError(f"--crop-size {self.crop_size} is larger than --short-side {self.short_side}")

    @property
    def num_views(self) -> int:
        return NUM_VIEWS[self.crop]


@dataclass(frozen=True)
class FeatureParams:
    """Everything a features run needs besides the list of videos.

    `from_frames` / `from_flow`: stores to read RGB frames / optical flow from instead of decoding the videos
    (flow models need `from_flow`). `flow_clip`: flow is clipped to +-this many pixels and scaled to the
    model's value range (I3D: +-20 px -> [-1, 1], pytorch-i3d charades_dataset.py / kinetics-i3d README).
    `precision`: autocast dtype of the forward pass; `feature_dtype`: what is stored.
    `keep_spatial`: also store the maps before pooling (`spatial`); `motion_maps`: MSNet displacement and
    confidence maps. `gpus_per_worker` may be fractional; 0 runs on CPU; None (default): 1 when torch sees a
    CUDA device here, else 0. `threads`: torch threads per worker
    (None: all cores). `prefetch`: clips decoded and preprocessed ahead of inference (bounds memory).
    """

    models: tuple[ModelChoice, ...]
    clips: ClipParams = field(default_factory=ClipParams)
    spatial: SpatialParams = field(default_factory=SpatialParams)
    from_frames: str | None = None
    from_flow: str | None = None
    flow_clip: float = 20.0
    batch_size: int = 8
    precision: str = "fp32"
    feature_dtype: str = "float32"
    keep_spatial: bool = False
    motion_maps: bool = False
    gpus_per_worker: float | None = None
    threads: int | None = None
    prefetch: int | None = None
    window: int = 32

    def __post_init__(self) -> None:
        if self.gpus_per_worker is None:
            import torch

            object.__setattr__(self, "gpus_per_worker", 1.0 if torch.cuda.is_available() else 0.0)
        for name in ("from_frames", "from_flow"):
            value = getattr(self, name)
            if value is not None:  # recorded in the store: absolute, so that it means the same from anywhere
                object.__setattr__(self, name, str(value) if is_url(str(value)) else os.path.abspath(os.fspath(value)))
        if not self.models:
            raise UsageError("give at least one --model")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise UsageError(f"a model is given twice: {', '.join(names)}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise UsageError(f"--batch-size must be a whole number >= 1, got {self.batch_size!r}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.feature_dtype not in FEATURE_DTYPES:
            raise UsageError(f"--feature-dtype must be one of {', '.join(FEATURE_DTYPES)}, got {self.feature_dtype!r}")
        if not self.gpus_per_worker >= 0:
            raise UsageError(f"--gpus-per-worker must be >= 0, got {self.gpus_per_worker!r}")
        if not self.flow_clip > 0:
            raise UsageError(f"flow clip bound must be > 0, got {self.flow_clip!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise UsageError(f"--threads must be a whole number >= 1, got {self.threads!r}")
        if self.prefetch is not None and (not isinstance(self.prefetch, int) or self.prefetch < 1):
            raise UsageError(f"prefetch must be a whole number >= 1, got {self.prefetch!r}")
        if self.window < 1:
            raise UsageError(f"decode window must be >= 1, got {self.window!r}")


    @classmethod
    def from_options(cls, recipe: str | dict | None = None, **options: Any) -> FeatureParams:
        """The parameters of `vfx features`: its flags as keywords (None: not given) over a recipe's `[features]`
        table over `OPTION_DEFAULTS`.

        `model` is a name or a list of names; `weights` one path per model in that order, or NAME=PATH
        entries. Models given replace the recipe's models and weights; a clip placement given (`stride`,
        `num_clips`, `segments`) replaces the recipe's.
        """
        placement = ("stride", "num_clips", "segments")
        replaces = {**one_choice(*placement), "model": ("model", "weights")}
        o = resolve_options("features", recipe, options, OPTION_DEFAULTS, replaces)
        models = _as_list(o["model"])
        if not models:
            raise UsageError("give a model: --model NAME (e.g. i3d_rgb; several for two-stream features)")
        weights = pair_weights(models, _as_list(o["weights"]))

        def opt_int(key: str) -> int | None:
            return None if o[key] is None else int(o[key])

        return cls(
            models=tuple(ModelChoice.of(m, w) for m, w in zip(models, weights)),
            clips=ClipParams(clip_len=opt_int("clip_len"), stride=opt_int("stride"), num_clips=opt_int("num_clips"),
                             segments=opt_int("segments"), frame_step=opt_int("frame_step")),
            spatial=SpatialParams(short_side=opt_int("short_side"), crop=str(o["crop"]), crop_size=opt_int("crop_size"),
                                  crop_reduce=str(o["crop_reduce"])),
            from_frames=o["from_frames"], from_flow=o["from_flow"], flow_clip=float(o["flow_clip"]),
            batch_size=int(o["batch_size"]), precision=str(o["precision"]), feature_dtype=str(o["feature_dtype"]),
            keep_spatial=bool(o["keep_spatial"]), motion_maps=bool(o["motion_maps"]),
            gpus_per_worker=None if o["gpus_per_worker"] is None else float(o["gpus_per_worker"]),
            threads=opt_int("threads"),
        )  # fmt: skip


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


def pair_weights(models: list[str], weights: list[str]) -> list[str | None]:
    """`weights` in model order, or as NAME=PATH; models without weights run randomly initialised."""
    named = {}
    plain = []
    for w in weights:
        name, sep, path = w.partition("=")
        if sep and name in models:
            named[name] = path
        else:
            plain.append(w)
    if plain and named:
        raise UsageError("give --weights either all as NAME=PATH or all in model order, not mixed")
    if plain:
        if len(plain) != len(models):
            raise UsageError(
                f"{len(plain)} --weights for {len(models)} --model ({', '.join(models)}): give one per model, "
                "in order, or NAME=PATH"
            )
        return list(plain)
    return [named.get(m) for m in models]


def _option_defaults() -> dict[str, Any]:
    p = FeatureParams(models=(ModelChoice("i3d_rgb"),), gpus_per_worker=0.0)
    flat = {"model": None, "weights": None}
    flat.update({k: v for k, v in asdict(p.clips).items()})
    flat.update({k: v for k, v in asdict(p.spatial).items() if k != "interpolation"})
    keep = ("from_frames", "from_flow", "flow_clip", "batch_size", "precision", "feature_dtype", "keep_spatial",
            "motion_maps", "threads")
    flat.update({k: getattr(p, k) for k in keep})
    flat["gpus_per_worker"] = None  # 1 when torch sees CUDA, else 0 (FeatureParams)
    return flat


@dataclass(frozen=True)
class ResolvedModel:
    """One model with what the run needs to know about it before any worker builds it."""

    choice: ModelChoice
    spec: Any  # vfx.models.spec.InputSpec (frozen dataclass; pickles into workers)
    feature_dim: int
    crop_size: int
    weights_sha256: str
    has_motion_maps: bool
    fixed_num_frames: int | None = None  # CorrNet: weights per frame, clips must have exactly this length

    @property
    def name(self) -> str:
        return self.choice.name

    @property
    def modality(self) -> str:
        return "flow" if self.spec.channels == 2 else "rgb"


@dataclass(frozen=True)
class ClipPlanParams:
    """The clip placement every video of the run uses (all models see the same clips)."""

    mode: str  # "dense" | "uniform" | "segments"
    clip_len: int  # frames per clip (segments: K)
    stride: int | None
    num_clips: int | None
    frame_step: int


@dataclass(frozen=True)
class ResolvedFeatures:
    params: FeatureParams
    models: tuple[ResolvedModel, ...]
    clips: ClipPlanParams

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted({m.modality for m in self.models}))

    @property
    def random_init(self) -> list[str]:
        return [m.name for m in self.models if m.weights_sha256 == RANDOM_INIT]

    def provenance(self) -> dict[str, Any]:
        import torch

        from vfx.version import __version__

        p = self.params
        return {
            "stage": "features",
            "models": [
                {
                    "name": m.name,
                    "weights": m.choice.weights,
                    "weights_sha256": m.weights_sha256,
                    "init_seed": RANDOM_INIT_SEED if m.weights_sha256 == RANDOM_INIT else None,
                    "builder_kwargs": {k: v for k, v in m.choice.kwargs},
                    "feature_dim": m.feature_dim,
                    "modality": m.modality,
                    "crop_size": m.crop_size,
                    "input_spec": asdict(m.spec),
                    "value_mapping": describe_value_mapping(m, p.flow_clip),
                }
                for m in self.models
            ],
            "feature_dim": sum(m.feature_dim for m in self.models),
            "clips": asdict(self.clips),
            "spatial": asdict(p.spatial),
            "inputs": {"frames": p.from_frames, "flow": p.from_flow, "flow_clip": p.flow_clip},
            "precision": p.precision,
            "feature_dtype": p.feature_dtype,
            "keep_spatial": p.keep_spatial,
            "motion_maps": p.motion_maps,
            "versions": {"vfx": __version__, "torch": torch.__version__},
        }


def describe_value_mapping(model: ResolvedModel, flow_clip: float) -> str:
    spec = model.spec
    lo, hi = spec.value_range
    if model.modality == "flow":
        head = f"flow clipped to +-{flow_clip:g} px, mapped linearly to [{lo:g}, {hi:g}]"
    else:
        head = f"RGB [0, 255] mapped linearly to [{lo:g}, {hi:g}]"
    if any(v != 0 for v in spec.mean) or any(v != 1 for v in spec.std):
        head += f", then (x - mean) / std with mean={list(spec.mean)} std={list(spec.std)}"
    return head


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve(params: FeatureParams) -> ResolvedFeatures:
    """Check the models and inputs, fill unset sampling and crop values from the first model's input spec."""
    from vfx.models.registry import build_on_meta

    if params.models and params.spatial.short_side is None:
        # The first model's own test resize (128 for the 112-pixel video ResNets, else 256).
        spec0 = build_on_meta(params.models[0].name, **dict(params.models[0].kwargs)).input_spec
        params = replace(params, spatial=replace(params.spatial, short_side=max(spec0.short_side, params.spatial.crop_size or 0)))
    models = []
    for choice in params.models:
        if choice.weights is not None and not os.path.isfile(choice.weights):
            raise UsageError(f"{choice.weights}: weights file not found (for --model {choice.name})")
        # On the meta device (no memory, no weights): its input spec and attributes.
        net = build_on_meta(choice.name, **dict(choice.kwargs))
        if choice.weights is not None:
            # Check names and shapes here, before any worker starts: a mismatch is one CheckpointError listing
            # the missing / unexpected / mis-shaped keys. Loading into meta tensors copies nothing.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                net.load_weights(choice.weights)
        spec = net.input_spec
        crop_size = params.spatial.crop_size or spec.size
        if crop_size > params.spatial.short_side:
            raise UsageError(
                f"{choice.name} takes {crop_size}x{crop_size} crops, larger than --short-side {params.spatial.short_side}"
            )
        sha = file_sha256(choice.weights) if choice.weights is not None else RANDOM_INIT
        fixed = getattr(net, "fixed_num_frames", None)
        models.append(
            ResolvedModel(choice, spec, int(spec.feature_dim), crop_size, sha, hasattr(net, "motion_maps"), fixed)
        )
    models_t = tuple(models)

    flow_models = [m.name for m in models_t if m.modality == "flow"]
    if flow_models and params.from_flow is None:
        raise UsageError(
            f"{', '.join(flow_models)} takes optical flow (2 channels), not RGB: give a flow store with "
            "--from-flow STORE (made by vfx extract-flow)"
        )
    if params.from_flow is not None and not flow_models:
        raise UsageError("--from-flow is given but no model takes flow (e.g. --model i3d_flow)")
    if params.from_frames is not None and not any(m.modality == "rgb" for m in models_t):
        raise UsageError("--from-frames is given but no model takes RGB frames")
    if params.motion_maps and not any(m.has_motion_maps for m in models_t):
        raise UsageError("--motion-maps needs a model with motion maps (msnet_*)")

    clips = _clip_plan(params.clips, models_t[0].spec)
    for m in models_t:
        if m.fixed_num_frames is not None and m.fixed_num_frames != clips.clip_len:
            raise UsageError(
                f"{m.name} was built for {m.fixed_num_frames}-frame clips (its weights are per frame); clips "
                f"here have {clips.clip_len} frames: use --clip-len {m.fixed_num_frames}"
            )
    return ResolvedFeatures(params, models_t, clips)


def _clip_plan(c: ClipParams, spec) -> ClipPlanParams:
    if c.segments is not None:
        return ClipPlanParams("segments", c.segments, None, None, 1)
    if c.clip_len is None and c.stride is None and c.num_clips is None and spec.sampling == "segments":
        # TSN-style models (TSM, MSNet) were trained and are tested on K segments of the whole video.
        return ClipPlanParams("segments", spec.num_frames, None, None, 1)
    clip_len = c.clip_len if c.clip_len is not None else spec.num_frames
    frame_step = c.frame_step if c.frame_step is not None else spec.frame_step
    if c.num_clips is not None:
        return ClipPlanParams("uniform", clip_len, None, c.num_clips, frame_step)
    # Back to back by default (v-iashin/video_features i3d: step_size = stack_size = 64).
    stride = c.stride if c.stride is not None else clip_len * frame_step
    return ClipPlanParams("dense", clip_len, stride, None, frame_step)


def warn_random_init(resolved: ResolvedFeatures) -> str | None:
    """Emit (and return) the loud warning for models without weights."""
    names = resolved.random_init
    if not names:
        return None
    message = (
        f"WARNING: {', '.join(names)} run with RANDOM weights (no --weights): the features are meaningless and "
        f"only good for testing; the store records weights_sha256 = '{RANDOM_INIT}'"
    )
    warnings.warn(message, RandomWeightsWarning, stacklevel=2)
    return message


#: Every option of `FeatureParams.from_options` (the flags of `vfx features`) and its default, read from the
#: dataclasses above: the one place they are written.
OPTION_DEFAULTS: dict[str, Any] = _option_defaults()
