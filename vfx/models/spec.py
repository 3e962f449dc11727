"""What a backbone expects as input and what it returns as a feature: `InputSpec`.

A feature extractor reads this instead of hard-coding per-model preprocessing: how many frames and
how they are sampled, the crop side, the channel count, and how pixels are normalised.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputSpec:
    """Input contract of one backbone.

    num_frames: frames per clip (dense sampling) or segments per video (segment sampling).
    size: square crop side in pixels.
    channels: 3 for RGB, 2 for optical flow (x then y).
    sampling: "dense" (consecutive frames, 3D nets) or "segments" (one frame per equal segment, TSN-style).
    frame_step: dense clips take every `frame_step`-th source frame (SlowFast "8x8": 8 frames, step 8).
    value_range: (low, high) that pixel values in [0, 255] are mapped to linearly before mean/std.
    mean, std: per-channel normalisation applied after `value_range`: `(v - mean) / std`.
    feature_dim: D of `forward_features(x) -> [B, D]`.
    short_side: frames are resized so that their short side is this many pixels before cropping (the
    reference's test transform: 256 for the ImageNet-style nets, 128 for the 112-pixel video ResNets).
    """

    num_frames: int
    size: int
    channels: int
    sampling: str
    value_range: tuple[float, float]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    feature_dim: int
    short_side: int = 256
    frame_step: int = 1

    def normalise(self, x_bcthw):
        """Map raw values in [0, 255] (float tensor `[B, C, T, H, W]`) to what the network expects."""
        lo, hi = self.value_range
        x = x_bcthw * ((hi - lo) / 255.0) + lo
        mean = x.new_tensor(self.mean).view(1, -1, 1, 1, 1)
        std = x.new_tensor(self.std).view(1, -1, 1, 1, 1)
        return (x - mean) / std

    def describe(self) -> str:
        """One-line human summary, e.g. `8 segments x 224^2 (short side 256) RGB [0,1] mean=0.485,...`."""
        kind = "segments" if self.sampling == "segments" else "frames"
        if self.sampling != "segments" and self.frame_step > 1:
            kind += f" (step {self.frame_step})"
        mod = "RGB" if self.channels == 3 else "flow"
        lo, hi = self.value_range
        norm = f"[{lo:g},{hi:g}]"
        if any(m != 0 for m in self.mean) or any(s != 1 for s in self.std):
            norm += " mean=" + ",".join(f"{m:g}" for m in self.mean)
            norm += " std=" + ",".join(f"{s:g}" for s in self.std)
        return f"{self.num_frames} {kind} x {self.size}^2 (short side {self.short_side}) {mod} {norm}"
