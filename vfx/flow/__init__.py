"""Optical flow: OpenCV TV-L1 (exact), our batched PyTorch TV-L1, Farneback and DIS; quantisation and display.

    from vfx.flow import TVL1Params, TVL1Torch, OpenCVTVL1, quantize
    flow_bhw2 = TVL1Torch(TVL1Params(), device="cpu")(gray0_bhw, gray1_bhw)

See `tvl1_torch.py` for what is reproduced of OpenCV's numerics and how batching works. `TVL1Torch` loads on
first use, so that reading the flow parameters (`vfx --help`) does not import torch.
"""

from vfx.flow.colorwheel import flow_to_rgb
from vfx.flow.opencv_backend import DIS, Farneback, OpenCVTVL1
from vfx.flow.params import TVL1_PRESETS, DISParams, FarnebackParams, FlowParams, TVL1Params, tvl1_preset
from vfx.flow.quantize import dequantize, quantize

__all__ = [
    "DIS", "DISParams", "Farneback", "FarnebackParams", "FlowParams", "OpenCVTVL1", "TVL1Params", "TVL1Torch",
    "TVL1_PRESETS", "dequantize", "flow_to_rgb", "quantize", "tvl1_preset",
]


def __getattr__(name: str):
    if name == "TVL1Torch":  # imports torch: only when asked for
        from vfx.flow.tvl1_torch import TVL1Torch

        return TVL1Torch
    raise AttributeError(f"module 'vfx.flow' has no attribute {name!r}")
