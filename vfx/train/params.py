"""All parameters of a fusion training run, in one frozen dataclass saved with every checkpoint.

`TrainParams` holds the network's `ModelConfig` and the sampling's `DataConfig` (both here, without torch, so
that `vfx --help` reads their defaults without loading it; `vfx.train.model` / `vfx.train.data` name them too).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from vfx.errors import UsageError
from vfx.recipes import resolve_options

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step", "constant")

SPATIAL_FUSIONS: tuple[str, ...] = ("sum", "max", "concat", "conv", "bilinear")
# "late" keeps both streams whole and averages their softmax scores (Simonyan & Zisserman 2014).
FUSIONS: tuple[str, ...] = SPATIAL_FUSIONS + ("late",)
TEMPORAL_FUSIONS: tuple[str, ...] = ("avg", "pool3d", "conv3d")

ARCHS: dict[str, int] = {"resnet18": 18, "resnet50": 50}
STREAMS: tuple[str, ...] = ("rgb", "flow")


@dataclass(frozen=True)
class ModelConfig:
    streams: tuple[str, ...] = ("rgb", "flow")
    fusion: str = "conv"
    temporal_fusion: str = "avg"
    arch: str = "resnet18"
    width: int = 64  # ResNet base width; 64 is the standard network, tests use 8
    num_segments: int = 3  # K, TSN's default for training (Wang et al. 2016, Sec. 3.1)
    flow_length: int = 5  # L flow fields per stack -> 2L channels (TSN uses 5; Simonyan & Zisserman 10)
    dropout: float = 0.5
    # Feature mode: channels of each stream's stored features ({} in video mode).
    feature_channels: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if not self.streams or any(s not in STREAMS for s in self.streams) or len(set(self.streams)) != len(self.streams):
            raise UsageError(f"--streams must be rgb, flow or rgb,flow; got {','.join(self.streams)}")
        if self.fusion not in FUSIONS:
            raise UsageError(f"unknown --fusion {self.fusion!r}; choose one of {', '.join(FUSIONS)}")
        if self.temporal_fusion not in TEMPORAL_FUSIONS:
            raise UsageError(
                f"unknown --temporal-fusion {self.temporal_fusion!r}; choose one of {', '.join(TEMPORAL_FUSIONS)}"
            )
        if self.arch not in ARCHS:
            raise UsageError(f"unknown --arch {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.num_segments < 1 or self.flow_length < 1 or self.width < 1:
            raise UsageError("segments, flow length and width must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def feature_mode(self) -> bool:
        return bool(self.feature_channels)

    @property
    def flow_channels(self) -> int:
        return 2 * self.flow_length


# TSN's GroupMultiScaleCrop: crop side = short side times one of these, aspect distorted by at most one step.
TSN_SCALES = (1.0, 0.875, 0.75, 0.66)
FEATURE_KEYS = ("features", "spatial")


@dataclass(frozen=True)
class DataConfig:
    num_segments: int = 3
    flow_length: int = 5
    crop_size: int = 112
    scales: tuple[float, ...] = TSN_SCALES
    max_distort: int = 1
    flip: bool = True
    # None: use the stores' `split` attribute ("train" vs test/val); a number: hold out that fraction of
    # each class, chosen with `split_seed` (kept apart from the training seed, so seeds share one split).
    val_fraction: float | None = None
    split_seed: int = 0
    # Feature mode: "features" (pooled vectors [num_clips, D]) or "spatial" (the maps `vfx features
    # --keep-spatial` stores, [num_clips, D, T', h, w], averaged over T').
    feature_key: str = "features"
    # Class pairs a horizontal flip turns into each other ("... left to right" <-> "... right to left"),
    # swapped on every flipped sample (vfx/train/labels.py).
    flip_label_map: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.num_segments < 1 or self.flow_length < 1 or self.crop_size < 8:
            raise UsageError("segments and flow length must be >= 1 and the crop size >= 8")
        if self.val_fraction is not None and not 0.0 < self.val_fraction < 1.0:
            raise UsageError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        if self.feature_key not in FEATURE_KEYS:
            raise UsageError(f"feature key must be one of {', '.join(FEATURE_KEYS)}, got {self.feature_key!r}")


@dataclass(frozen=True)
class TrainParams:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    frames: str | None = None
    flow: str | None = None
    features: tuple[str, ...] = ()
    rgb_weights: str | None = None  # torchvision-style RGB ResNet weights: both backbones (flow: cross-modality)
    # Checkpoints of earlier runs (e.g. the single-stream ones) whose backbones, and per-stream classifiers
    # where this model has the same ones (late fusion, single streams), start this run: the paper fuses
    # trained spatial and temporal networks and fine-tunes them (Sec. 3 and 4).
    init_from: tuple[str, ...] = ()
    epochs: int = 10
    epoch_repeats: int = 1  # passes over the training videos per epoch (different segments and crops each)
    batch_size: int = 8
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4  # TSN's value
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    step_epochs: tuple[int, ...] = ()  # schedule "step": multiply the rate by 0.1 at each of these epochs
    grad_clip: float | None = 20.0  # max global gradient norm; TSN clips at 20 (tsn-pytorch main.py)
    seed: int = 0
    num_workers: int = 0
    eval_every: int = 1  # epochs between held-out evaluations; 0: only after the last epoch
    device: str = "cpu"  # cpu, cuda or auto (cuda when present); determinism is promised on CPU
    threads: int | None = None  # torch intra-op threads (None: torch's default); 1 is fastest on a busy machine

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown --optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise UsageError(f"unknown --schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.epochs < 1 or self.batch_size < 1 or self.epoch_repeats < 1:
            raise UsageError("--epochs, --epoch-repeats and --batch-size must be at least 1")
        if self.lr <= 0:
            raise UsageError(f"--lr must be positive, got {self.lr}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise UsageError(f"--grad-clip must be positive, got {self.grad_clip}")
        if self.model.num_segments != self.data.num_segments or self.model.flow_length != self.data.flow_length:
            raise UsageError("model and data disagree on the number of segments or the flow length")
        if self.device not in ("cpu", "cuda", "auto"):
            raise UsageError(f"--device must be cpu, cuda or auto, got {self.device!r}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {self.threads}")
        if self.features and (self.frames or self.flow):
            raise UsageError("give either --features stores or --frames/--flow stores, not both")

    # Parameters that may differ between an interrupted run and its resumption.
    RESUMABLE_CHANGES = ("epochs", "num_workers", "eval_every", "threads", "device")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainParams:
        d = dict(d)
        model = _build(ModelConfig, d.pop("model", {}))
        data = _build(DataConfig, d.pop("data", {}))
        return _build(cls, d, model=model, data=data)

    def with_epochs(self, epochs: int) -> TrainParams:
        return replace(self, epochs=epochs)

    @classmethod
    def from_options(cls, recipe: str | dict | None = None, **options: Any) -> TrainParams:
        """The parameters of `vfx train-fusion`: its flags as keywords (None: not given) over a recipe's
        `[train-fusion]` table over `OPTION_DEFAULTS`.

        `segments` and `flow_length` set both the model and the data sampling; `streams` is "rgb,flow" or a
        sequence, `step_epochs` "30,60" or a sequence; `grad_clip` 0 turns clipping off; `feature_maps` reads
        the stored spatial maps in feature mode; `workers` are DataLoader workers; `flip_label_map` "A=B;C=D"
        or (A, B) pairs (a recipe's list).
        """
        o = resolve_options("train-fusion", recipe, options, OPTION_DEFAULTS)
        features = tuple(str(p) for p in o["features"] or ())
        if not features and o["frames"] is None and o["flow"] is None:
            raise UsageError("give --frames and/or --flow stores, or --features stores")
        shared = dict(num_segments=int(o["segments"]), flow_length=int(o["flow_length"]))
        model = ModelConfig(streams=_names(o["streams"]), fusion=o["fusion"], temporal_fusion=o["temporal_fusion"],
                            arch=o["arch"], width=int(o["width"]), dropout=float(o["dropout"]), **shared)
        data = DataConfig(crop_size=int(o["crop_size"]), flip=bool(o["flip"]), val_fraction=o["val_fraction"],
                          split_seed=int(o["split_seed"]), feature_key="spatial" if o["feature_maps"] else "features",
                          flip_label_map=_flip_pairs(o["flip_label_map"]), **shared)
        text = {k: None if o[k] is None else str(o[k]) for k in ("frames", "flow", "rgb_weights")}
        plain = {k: o[k] for k in _PLAIN}
        return cls(
            model=model, data=data, features=features, init_from=tuple(str(p) for p in o["init_from"] or ()),
            step_epochs=_epochs(o["step_epochs"]), grad_clip=o["grad_clip"] or None, num_workers=int(o["workers"]),
            **text, **plain,
        )  # fmt: skip


_PLAIN = ("epochs", "epoch_repeats", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule",
          "warmup_epochs", "seed", "threads", "device", "eval_every")


def _names(value) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    return tuple(s.strip() for s in items if s.strip())


def _epochs(value) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        return tuple(int(v) for v in (value.split(",") if isinstance(value, str) else value))
    except ValueError:
        raise UsageError(f"--step-epochs {value!r} is not a comma-separated list of epochs") from None


def _flip_pairs(value) -> tuple[tuple[str, str], ...]:
    from vfx.train.labels import parse_flip_label_map

    if isinstance(value, str):
        return parse_flip_label_map(value)
    return tuple(tuple(p) for p in value or ())


def _option_defaults() -> dict[str, Any]:
    p, m, d = TrainParams(), ModelConfig(), DataConfig()
    return {
        "frames": None, "flow": None, "features": None, "feature_maps": d.feature_key == "spatial",
        "streams": ",".join(m.streams), "fusion": m.fusion, "temporal_fusion": m.temporal_fusion, "arch": m.arch,
        "width": m.width, "segments": m.num_segments, "flow_length": m.flow_length, "crop_size": d.crop_size,
        "dropout": m.dropout, "step_epochs": None, "grad_clip": p.grad_clip, "workers": p.num_workers,
        "val_fraction": d.val_fraction, "split_seed": d.split_seed, "flip": d.flip, "flip_label_map": None,
        "rgb_weights": None,
        "init_from": None, **{k: getattr(p, k) for k in _PLAIN},
    }  # fmt: skip


def _build(kind, d: dict[str, Any], **extra):
    """Rebuild a dataclass from JSON: lists back to tuples (nested for `feature_channels`)."""
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise UsageError(f"unknown parameters {unknown} for {kind.__name__}")
    values = {}
    for k, v in d.items():
        if isinstance(v, list):
            v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        values[k] = v
    values.update(extra)
    return kind(**values)


def differences(a: TrainParams, b: TrainParams, ignore=()) -> list[str]:
    """'name: a -> b' for every (nested) parameter that differs."""
    out = []

    def walk(x, y, prefix):
        for key in sorted(set(x) | set(y)):
            name = f"{prefix}{key}"
            if name in ignore:
                continue
            if isinstance(x.get(key), dict) and isinstance(y.get(key), dict):
                walk(x[key], y[key], name + ".")
            elif x.get(key) != y.get(key):
                out.append(f"{name}: {x.get(key)!r} -> {y.get(key)!r}")

    walk(a.to_dict(), b.to_dict(), "")
    return out


#: Every option of `TrainParams.from_options` (the flags of `vfx train-fusion`) and its default, read from the
#: dataclasses: the one place they are written.
OPTION_DEFAULTS: dict[str, Any] = _option_defaults()
