"""MSNet: TSM-ResNet with the Motion Squeeze module (Kwon et al., ECCV 2020).

Faithful to arunos728/MotionSqueeze (resnet_TSM.py, models.py, main_kinetics.py). The MS module sits
after layer2 (`pos=2`) and adds a motion feature to the layer2 output:

1. channel reduction: 1x1 conv (128*expansion -> 64, no bias), BN, ReLU  (`chnl_reduction`);
2. each frame t (features L2-normalised over channels, `x / sqrt(sum x^2 + 1e-6)`) is correlated with
   frame t+1 over a 15x15 neighbourhood, dilation 1 (`SpatialCorrelationSampler(1, 15, 1, 0, 1)`),
   then ReLU;
3. confidence = the maximum correlation (top-1) at each position;
4. kernel-soft-argmax: the correlation is multiplied by a Gaussian (sigma 5, in offset units) centred
   on its argmax, by the temperature 100 (used for training and testing in main_kinetics.py), and
   soft-maxed over the 225 offsets; the expected offset divided by 7 is the displacement, x then y,
   in [-1, 1] (1 = 7 feature-map pixels);
5. the last frame has no successor: its (dx, dy, confidence) are copies of frame T-2's
   (`Flow_refinement.forward` concatenates `x[:, -1:]`);
6. transformation: four depthwise-separable stages (depthwise kxk + BN + ReLU, pointwise + BN + ReLU),
   kernels 7,3,3,3, channels 3 -> 16 -> 32 -> 64 -> 128*expansion; the result is added to the layer2
   output (no ReLU after the sum).

The backbone is the TSM ResNet (shift on the residual branch of every block, 1/8 + 1/8 channels,
zeros at the ends; tsm_util.py). The classifier is a kernel-1 Conv1d `new_fc` after dropout; logits are
averaged over frames. Input: ImageNet mean/std on [0, 1] RGB, 8 segments at 224x224.

Checkpoints of their training script: `{"epoch", "arch", "state_dict", "best_prec1"}` with keys
`module.base_model.layer1.0.conv1.weight`, `module.base_model.chnl_reduction.0.weight`,
`module.base_model.flow_refinement.conv1.0.weight`, `module.new_fc.weight` [K, D, 1]. The reference
ResNet also owns a `bn2` (BatchNorm 128) that its forward never uses; `msnet_key_map` drops it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vfx.models.correlation import local_correlation
from vfx.models.registry import ModelCard, register
from vfx.models.resnet import ResNet2d
from vfx.models.spec import InputSpec
from vfx.models.tsm import IMAGENET_MEAN, IMAGENET_STD, SegmentResNet, install_temporal_shift, tsm_key_map

PATCH = 15  # correlation window, resnet_TSM.py `self.patch`
SIGMA = 5.0  # Gaussian of the kernel-soft-argmax, `apply_gaussian_kernel(sigma=5)`
TEMPERATURE = 100.0  # main_kinetics.py: `temperature = 100` for train, validate and test
REDUCED = 64  # channels after `chnl_reduction`


def l2_normalise(x_nchw: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """`x / sqrt(sum_c x^2 + eps)` as resnet_TSM.py `L2normalize` (eps inside the root)."""
    return x_nchw / (x_nchw.pow(2).sum(dim=1, keepdim=True) + eps).sqrt()


def kernel_soft_argmax(
    corr_nkhw: torch.Tensor, patch: int = PATCH, sigma: float = SIGMA, temperature: float = TEMPERATURE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Correlation `[N, P*P, h, w]` (offset index = iy*P + ix) -> displacement `[N, 2, h, w]`, confidence `[N, 1, h, w]`."""
    n, _, h, w = corr_nkhw.shape
    confidence, idx = corr_nkhw.max(dim=1, keepdim=True)
    iy = torch.div(idx, patch, rounding_mode="floor").to(corr_nkhw.dtype)
    ix = (idx % patch).to(corr_nkhw.dtype)
    grid = torch.arange(patch, dtype=corr_nkhw.dtype, device=corr_nkhw.device)
    gy = grid.view(1, patch, 1, 1, 1)
    gx = grid.view(1, 1, patch, 1, 1)
    gauss = torch.exp(-((gx - ix.view(n, 1, 1, h, w)) ** 2 + (gy - iy.view(n, 1, 1, h, w)) ** 2) / (2 * sigma**2))
    prob = torch.softmax((corr_nkhw * gauss.view(n, patch * patch, h, w)) * temperature, dim=1)
    prob = prob.view(n, patch, patch, h, w)
    radius = (patch - 1) / 2
    offsets = torch.arange(patch, dtype=corr_nkhw.dtype, device=corr_nkhw.device) - radius
    dx = (prob.sum(dim=1) * offsets.view(1, patch, 1, 1)).sum(dim=1, keepdim=True) / radius
    dy = (prob.sum(dim=2) * offsets.view(1, patch, 1, 1)).sum(dim=1, keepdim=True) / radius
    return torch.cat([dx, dy], dim=1), confidence


def _separable(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, kernel, 1, kernel // 2, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class MotionTransform(nn.Module):
    """(dx, dy, confidence) -> motion feature with the layer2 width (`Flow_refinement`)."""

    def __init__(self, out_channels: int):
        super().__init__()
        self.conv1 = _separable(3, 16, 7)
        self.conv2 = _separable(16, 32, 3)
        self.conv3 = _separable(32, 64, 3)
        self.conv4 = _separable(64, out_channels, 3)

    def forward(self, motion_nchw: torch.Tensor) -> torch.Tensor:
        return self.conv4(self.conv3(self.conv2(self.conv1(motion_nchw))))


class MotionSqueeze(nn.Module):
    def __init__(self, in_channels: int, patch: int = PATCH, temperature: float = TEMPERATURE):
        super().__init__()
        self.patch = patch
        self.temperature = temperature
        self.reduce = nn.Sequential(
            nn.Conv2d(in_channels, REDUCED, 1, bias=False), nn.BatchNorm2d(REDUCED), nn.ReLU(inplace=True)
        )
        self.transform = MotionTransform(in_channels)

    def motion(self, x_nchw: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Displacement `[B, T-1, 2, h, w]` and confidence `[B, T-1, 1, h, w]` from layer2 maps `[B*T, C, h, w]`."""
        f = self.reduce(x_nchw)
        nt, c, h, w = f.shape
        f = f.view(nt // t, t, c, h, w)
        pre = f[:, :-1].reshape(-1, c, h, w)
        post = f[:, 1:].reshape(-1, c, h, w)
        corr = F.relu(local_correlation(l2_normalise(pre), l2_normalise(post), self.patch))
        disp, conf = kernel_soft_argmax(corr, self.patch, SIGMA, self.temperature)
        return disp.view(nt // t, t - 1, 2, h, w), conf.view(nt // t, t - 1, 1, h, w)

    def forward(self, x_nchw: torch.Tensor, t: int) -> torch.Tensor:
        disp, conf = self.motion(x_nchw, t)
        m = torch.cat([disp, conf], dim=2)
        m = torch.cat([m, m[:, -1:]], dim=1)  # the last frame repeats the previous pair's motion
        return self.transform(m.flatten(0, 1)) + x_nchw


class MSNet(SegmentResNet):
    def __init__(self, depth: int = 50, num_classes: int = 400, num_segments: int = 8, size: int = 224,
                 width: int = 64, dropout: float = 0.5, temperature: float = TEMPERATURE):
        super().__init__()
        self.backbone = ResNet2d(depth, num_classes=0, width=width)
        install_temporal_shift(self.backbone, num_segments)
        layer2_channels = width * 2 * self.backbone.block.expansion
        self.motion = MotionSqueeze(layer2_channels, temperature=temperature)
        self.feature_dim = self.backbone.out_channels
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.feature_dim, num_classes)
        self.input_spec = InputSpec(
            num_frames=num_segments, size=size, channels=3, sampling="segments", value_range=(0.0, 1.0),
            mean=IMAGENET_MEAN, std=IMAGENET_STD, feature_dim=self.feature_dim,
        )  # fmt: skip

    def _layer2(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        net = self.backbone
        x = self._frames_as_batch(x_bcthw)
        if x_bcthw.shape[2] < 2:
            raise ValueError(f"MSNet needs at least 2 frames, got T={x_bcthw.shape[2]}")
        return net.layer2(net.layer1(net.stem(x)))

    def forward_feature_maps(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """layer4 maps of every segment: `[B, D, T, H/32, W/32]`."""
        t = x_bcthw.shape[2]
        x = self.motion(self._layer2(x_bcthw), t)
        x = self.backbone.layer4(self.backbone.layer3(x))
        return self._batch_as_frames(x, x_bcthw.shape[0])

    def motion_maps(self, x_bcthw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The MS module's displacement `[B, T-1, 2, h, w]` (x, y; 1 = 7 layer2 pixels) and confidence `[B, T-1, 1, h, w]`."""
        return self.motion.motion(self._layer2(x_bcthw), x_bcthw.shape[2])

    @staticmethod
    def key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return msnet_key_map(state)


def msnet_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """MotionSqueeze keys (after `module.` is stripped) -> ours: its motion module and Conv1d classifier here,
    the TSM ResNet around them as TSM's (`tsm_key_map`). Our own keys pass through."""
    renamed = {}
    for key, value in state.items():
        if key.startswith("base_model."):
            rest = key[len("base_model."):]
            if rest.startswith("bn2."):
                continue  # defined in the reference ResNet.__init__ but never used in forward
            for old, new in (("chnl_reduction.", "motion.reduce."), ("flow_refinement.", "motion.transform."),
                             ("fc1.", "fc.")):  # fc1: dropout=0, the Conv1d classifier stays in the base model
                if rest.startswith(old):
                    key = new + rest[len(old):]
                    break
        renamed[key] = value
    out = tsm_key_map(renamed)
    if "fc.weight" in out and out["fc.weight"].dim() == 3:
        out["fc.weight"] = out["fc.weight"][:, :, 0]  # Conv1d(D, K, kernel_size=1) weight [K, D, 1] -> Linear [K, D]
    return out


_MS_WEIGHTS = "arunos728/MotionSqueeze README (links to its trained checkpoints)"
_MS_FORMAT = ("a checkpoint of its main_kinetics.py: {'epoch', 'arch', 'state_dict': {'module.base_model.layer1.0.conv1.weight', ..., "
              "'module.new_fc.weight'}, 'best_prec1'}")


@register("msnet_r18", card=ModelCard(weights=_MS_WEIGHTS, weights_format=_MS_FORMAT))
def msnet_r18(num_classes: int = 400, **kw) -> MSNet:
    return MSNet(18, num_classes=num_classes, **kw)


@register("msnet_r50", card=ModelCard(
    weights=_MS_WEIGHTS, weights_format=_MS_FORMAT,
    paper_gflops=34.0, paper_params_m=24.6, paper_source="MSNet, Kwon et al. 2020, Table 1: 8 frames",
))  # fmt: skip
def msnet_r50(num_classes: int = 400, **kw) -> MSNet:
    return MSNet(50, num_classes=num_classes, **kw)
