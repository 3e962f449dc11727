"""Parameters of every flow backend, as frozen dataclasses, and the named TV-L1 presets.

TV-L1 defaults are those of OpenCV's `cv::optflow::DualTVL1OpticalFlow` (opencv_contrib
modules/optflow/src/tvl1flow.cpp, default constructor): tau 0.25, lambda 0.15, theta 0.3, 5 scales,
5 warps, epsilon 0.01, 30 inner x 10 outer iterations, scale step 0.8, gamma 0, 5x5 median filter.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vfx.device import DEVICES
from vfx.errors import UsageError
from vfx.flow.quantize import DEFAULT_BOUND, FORMATS
from vfx.image import DEFAULT_SHORT_SIDE, Resize, parse_size
from vfx.recipes import load_recipe, one_choice, resolve_options
from vfx.sources.files import is_url

BACKENDS = ("opencv", "torch", "farneback", "dis")
TVL1_BACKENDS = ("opencv", "torch")


@dataclass(frozen=True)
class TVL1Params:
    """Dual TV-L1 (Zach et al. 2007; Sanchez et al. IPOL 2013) as OpenCV's CPU implementation runs it.

    `lambda_` is OpenCV's `lambda` (a Python keyword). `median_filtering` is the median kernel applied to
    the flow before every outer iteration; 0 or 1 turns it off (OpenCV: `medianFiltering > 1`), and
    OpenCV's float median supports only 3 and 5.
    """

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    gamma: float = 0.0
    median_filtering: int = 5

    def __post_init__(self) -> None:
        checks = [
            (self.tau > 0, "tau must be > 0"),
            (self.lambda_ > 0, "lambda must be > 0"),
            (self.theta > 0, "theta must be > 0"),
            (self.nscales >= 1, "nscales must be >= 1"),
            (self.warps >= 1, "warps must be >= 1"),
            (self.epsilon >= 0, "epsilon must be >= 0"),
            (self.inner_iterations >= 1, "inner_iterations must be >= 1"),
            (self.outer_iterations >= 1, "outer_iterations must be >= 1"),
            (0 < self.scale_step < 1, "scale_step must be in (0, 1)"),
            (self.gamma >= 0, "gamma must be >= 0"),
            (self.median_filtering in (0, 1, 3, 5), "median_filtering must be 0/1 (off), 3 or 5"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(f"TV-L1 parameters: {message}")

    @property
    def uses_median(self) -> bool:
        return self.median_filtering > 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# `denseflow` is what denseflow/TSN get from OpenCV's CUDA TV-L1 (`cuda::OpticalFlowDual_TVL1::create()`
# in open-mmlab/denseflow src/denseflow_gpu.cpp): the same tau/lambda/theta/scales/warps/epsilon and
# scale step 0.8, but one loop of 300 iterations per warp and no median filter.
TVL1_PRESETS: dict[str, TVL1Params] = {
    "opencv": TVL1Params(),
    "denseflow": TVL1Params(inner_iterations=300, outer_iterations=1, median_filtering=1),
}


def tvl1_preset(name: str, **overrides: Any) -> TVL1Params:
    """A preset with some fields replaced (None values are ignored, so CLI options can pass through)."""
    if name not in TVL1_PRESETS:
        raise UsageError(f"unknown TV-L1 preset {name!r}; choose one of {', '.join(TVL1_PRESETS)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(changes) - set(TVL1Params.__dataclass_fields__)
    if unknown:
        raise UsageError(f"unknown TV-L1 parameter(s): {', '.join(sorted(unknown))}")
    return replace(TVL1_PRESETS[name], **changes)


@dataclass(frozen=True)
class FarnebackParams:
    """`cv2.calcOpticalFlowFarneback` (polynomial expansion; not TV-L1). Values of the OpenCV samples."""

    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DISParams:
    """`cv2.DISOpticalFlow` (dense inverse search; not TV-L1) at one of OpenCV's presets."""

    preset: str = "medium"

    def __post_init__(self) -> None:
        if self.preset not in ("ultrafast", "fast", "medium"):
            raise UsageError(f"DIS preset must be ultrafast, fast or medium, not {self.preset!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FlowParams:
    """Everything that decides the flow values, plus how they are computed (device, batch size).

    TV-L1 values: the named `preset`, with the fields of `tvl1_changes` ((name, value) pairs) replaced; the
    values used are `tvl1`. A preset thus always names its own values, unless changes are listed explicitly.
    Size: `size` (width, height), or `short_side`; "auto" is 256 for videos and a frames store's own size for
    `from_frames` (its frames were sized when they were extracted); None with no size keeps the frames' size.
    """

    backend: str = "opencv"
    preset: str = "opencv"
    tvl1_changes: tuple[tuple[str, Any], ...] = ()
    farneback: FarnebackParams = field(default_factory=FarnebackParams)
    dis: DISParams = field(default_factory=DISParams)
    # Gray first, then cv2.resize INTER_LINEAR, which is what denseflow does.
    size: tuple[int, int] | None = None
    short_side: int | str | None = "auto"
    step: int = 1
    bound: float = DEFAULT_BOUND
    format: str = "uint8"
    jpeg_quality: int = 95
    device: str = "auto"
    batch_size: int = 16
    from_frames: str | None = None  # path of a frames store whose frames are the input (made absolute)

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.format not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.device not in DEVICES:
            raise UsageError(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.step < 1:
            raise UsageError(f"--step must be >= 1, got {self.step}")
        if not self.bound > 0:
            raise UsageError(f"--bound must be > 0, got {self.bound}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if not 1 <= self.jpeg_quality <= 100:
            raise UsageError(f"JPEG quality must be in 1..100, got {self.jpeg_quality}")
        if self.backend != "torch" and self.device == "cuda":
            raise UsageError(f"--device cuda needs --backend torch ({self.backend} runs on the CPU)")
        if self.size is not None and self.short_side not in (None, "auto"):
            raise UsageError("choose either --size or --short-side, not both")
        set_ = object.__setattr__
        if self.short_side == "auto":
            set_(self, "short_side", None if self.size is not None or self.from_frames else DEFAULT_SHORT_SIDE)
        if self.size is not None:
            set_(self, "size", parse_size(self.size))
        if self.from_frames is not None and not is_url(str(self.from_frames)):
            set_(self, "from_frames", os.path.abspath(os.fspath(self.from_frames)))
        base = tvl1_preset(self.preset)  # checks the name
        changes = dict(self.tvl1_changes)
        tvl1_preset(self.preset, **changes)  # checks the names and values
        # Only real changes, sorted: equal parameters compare (and hash into the store) equal.
        set_(self, "tvl1_changes", tuple(sorted((k, v) for k, v in changes.items() if getattr(base, k) != v)))
        if self.backend == "torch" and self.tvl1.gamma != 0:
            raise UsageError("--gamma is only implemented by --backend opencv")

    @property
    def tvl1(self) -> TVL1Params:
        return replace(TVL1_PRESETS[self.preset], **dict(self.tvl1_changes))

    @property
    def resize(self) -> Resize:
        # Resize validates sizes; interpolation "linear" is cv2.INTER_LINEAR on the gray frames.
        return Resize(short_side=self.short_side, size=self.size, interpolation="linear")

    @classmethod
    def from_options(cls, recipe: str | dict | None = None, **options: Any) -> FlowParams:
        """The parameters of `vfx extract-flow`: its flags as keywords (None: not given; `lambda_` for
        `--lambda`) over a recipe's `[extract-flow]` table over `OPTION_DEFAULTS`.

        TV-L1 values given start from the preset (given, the recipe's, or "opencv"); `size` and `short_side`
        are one choice, and the one given replaces the recipe's.
        """
        table = dict(load_recipe(recipe, "extract-flow") if isinstance(recipe, str) else recipe or {})
        if "lambda" in table:
            table["lambda_"] = table.pop("lambda")
        o = resolve_options("extract-flow", table, options, OPTION_DEFAULTS, one_choice("size", "short_side"))
        changes = tuple((k, o[k]) for k in TVL1_FIELDS if o[k] is not None)
        return cls(
            backend=o["backend"], preset=o["preset"], tvl1_changes=changes, size=o["size"],
            short_side="auto" if o["short_side"] is None else int(o["short_side"]), step=int(o["step"]),
            bound=float(o["bound"]), format=o["format"], jpeg_quality=int(o["jpeg_quality"]), device=o["device"],
            batch_size=int(o["batch_size"]), from_frames=o["from_frames"],
        )  # fmt: skip

    def provenance(self) -> dict[str, Any]:
        """What the stored values depend on (device and batch size do not enter)."""
        record: dict[str, Any] = {
            "stage": "flow",
            "backend": self.backend,
            "algorithm": "tvl1" if self.backend in TVL1_BACKENDS else f"{self.backend} (not TV-L1)",
            "size": list(self.size) if self.size else None,
            "short_side": self.short_side,
            "step": self.step,
            "bound": float(self.bound),
            "format": self.format,
            "from_frames": self.from_frames,
            "gray": "cv2.COLOR_RGB2GRAY, then resize (INTER_LINEAR)",
        }
        if self.format == "jpeg":
            record["jpeg_quality"] = self.jpeg_quality
        if self.backend in TVL1_BACKENDS:
            record["preset"] = self.preset
            record["tvl1"] = self.tvl1.to_dict()
        elif self.backend == "farneback":
            record["farneback"] = self.farneback.to_dict()
        else:
            record["dis"] = self.dis.to_dict()
        return record


TVL1_FIELDS = tuple(TVL1Params.__dataclass_fields__)


def _option_defaults() -> dict[str, Any]:
    p = FlowParams()
    keep = ("backend", "preset", "device", "batch_size", "size", "step", "bound", "format", "jpeg_quality", "from_frames")
    # short_side None: "auto" (256 for videos, a frames store's size); TV-L1 values None: the preset's.
    return {**{k: getattr(p, k) for k in keep}, "short_side": None, **dict.fromkeys(TVL1_FIELDS)}


#: Every option of `FlowParams.from_options` (the flags of `vfx extract-flow`) and its default, read from the
#: dataclass: the one place they are written.
OPTION_DEFAULTS: dict[str, Any] = _option_defaults()
