"""Parameters of every flow backend, as frozen dataclasses, and the named TV-L1 presets.

TV-L1 defaults are those of OpenCV's `cv::optflow::DualTVL1OpticalFlow` (opencv_contrib
modules/optflow/src/tvl1flow.cpp, default constructor): tau 0.25, lambda 0.15, theta 0.3, 5 scales,
5 warps, epsilon 0.01, 30 inner x 10 outer iterations, scale step 0.8, gamma 0, 5x5 median filter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from vfx.errors import UsageError


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
