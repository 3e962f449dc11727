"""Optical flow: OpenCV TV-L1 (exact), our batched PyTorch TV-L1, Farneback and DIS; quantisation and display.

    from vfx.flow import TVL1Params, TVL1Torch, OpenCVTVL1, quantize
    flow_bhw2 = TVL1Torch(TVL1Params(), device="cpu")(gray0_bhw, gray1_bhw)

See `tvl1_torch.py` for what is reproduced of OpenCV's numerics and how batching works.
"""

from vfx.flow.colorwheel import flow_to_rgb
from vfx.flow.opencv_backend import DIS, Farneback, OpenCVTVL1
from vfx.flow.params import TVL1_PRESETS, DISParams, FarnebackParams, TVL1Params, tvl1_preset
from vfx.flow.quantize import dequantize, quantize
from vfx.flow.tvl1_torch import TVL1Torch

__all__ = [
    "DIS", "DISParams", "Farneback", "FarnebackParams", "OpenCVTVL1", "TVL1Params", "TVL1Torch", "TVL1_PRESETS",
    "dequantize", "flow_to_rgb", "quantize", "tvl1_preset",
]
