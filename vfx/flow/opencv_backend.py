"""OpenCV flow backends: TV-L1 (`cv2.optflow.DualTVL1OpticalFlow`), Farneback and DIS.

The TV-L1 backend is a thin wrapper: it builds the OpenCV object with every parameter of `TVL1Params` and
calls `calc` once per pair, so its output is bit for bit what a direct cv2 call gives
(`tests/test_flow_backends.py` checks this on the sample videos).
"""

from __future__ import annotations

import cv2
import numpy as np

from vfx.errors import UsageError
from vfx.flow.params import DISParams, FarnebackParams, TVL1Params

_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def create_tvl1(params: TVL1Params):
    """`cv2.optflow.DualTVL1OpticalFlow` with every parameter of `params`."""
    if not hasattr(cv2, "optflow"):
        raise UsageError("the opencv TV-L1 backend needs opencv-contrib-python (cv2.optflow is missing)")
    # The keyword is spelled `innnerIterations` (three n) in OpenCV's Python binding, so set it by name.
    algo = cv2.optflow.DualTVL1OpticalFlow_create()
    algo.setTau(params.tau)
    algo.setLambda(params.lambda_)
    algo.setTheta(params.theta)
    algo.setScalesNumber(params.nscales)
    algo.setWarpingsNumber(params.warps)
    algo.setEpsilon(params.epsilon)
    algo.setInnerIterations(params.inner_iterations)
    algo.setOuterIterations(params.outer_iterations)
    algo.setScaleStep(params.scale_step)
    algo.setGamma(params.gamma)
    algo.setMedianFiltering(params.median_filtering)
    algo.setUseInitialFlow(False)
    return algo


class OpenCVTVL1:
    """TV-L1 pair by pair on the CPU, exactly as OpenCV computes it."""

    name = "opencv"

    def __init__(self, params: TVL1Params):
        self.params = params
        self._algo = None

    def __call__(self, frames0_bhw: np.ndarray, frames1_bhw: np.ndarray) -> np.ndarray:
        """uint8 gray [B, H, W] pairs -> float32 [B, H, W, 2] (x, y) flow in pixels."""
        if self._algo is None:
            self._algo = create_tvl1(self.params)
        out = np.empty(frames0_bhw.shape + (2,), np.float32)
        for i, (a, b) in enumerate(zip(frames0_bhw, frames1_bhw)):
            out[i] = self._algo.calc(a, b, None)
            # `calc` shrinks the object's scale count for tiny frames (tvl1flow.cpp sets nscales = s when
            # a level would fall under 16 px); restore it so later, larger frames get every level.
            self._algo.setScalesNumber(self.params.nscales)
        return out

    def __getstate__(self):
        return {"params": self.params, "_algo": None}


class Farneback:
    """`cv2.calcOpticalFlowFarneback`: fast, not TV-L1."""

    name = "farneback"

    def __init__(self, params: FarnebackParams = FarnebackParams()):
        self.params = params

    def __call__(self, frames0_bhw: np.ndarray, frames1_bhw: np.ndarray) -> np.ndarray:
        p = self.params
        out = np.empty(frames0_bhw.shape + (2,), np.float32)
        for i, (a, b) in enumerate(zip(frames0_bhw, frames1_bhw)):
            out[i] = cv2.calcOpticalFlowFarneback(a, b, None, p.pyr_scale, p.levels, p.winsize, p.iterations,
                                                  p.poly_n, p.poly_sigma, 0)
        return out


class DIS:
    """`cv2.DISOpticalFlow` at one of its presets: fastest, not TV-L1."""

    name = "dis"

    def __init__(self, params: DISParams = DISParams()):
        self.params = params
        self._algo = None

    def __call__(self, frames0_bhw: np.ndarray, frames1_bhw: np.ndarray) -> np.ndarray:
        if self._algo is None:
            self._algo = cv2.DISOpticalFlow_create(_DIS_PRESETS[self.params.preset])
        out = np.empty(frames0_bhw.shape + (2,), np.float32)
        for i, (a, b) in enumerate(zip(frames0_bhw, frames1_bhw)):
            out[i] = self._algo.calc(a, b, None)
        return out

    def __getstate__(self):
        return {"params": self.params, "_algo": None}
