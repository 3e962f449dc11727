"""Fusion of a spatial (RGB) and a temporal (flow) stream, and fusion over time.

Feichtenhofer, Pinz, Zisserman, "Convolutional Two-Stream Network Fusion for Video Action Recognition",
CVPR 2016. Spatial fusion (Sec. 3.1) combines the two streams' last conv maps location by location; temporal
fusion (Sec. 3.2) combines the fused maps of the K sampled segments. Numbers that the paper leaves open are
taken from the authors' release (github.com/feichtenhofer/twostreamfusion, `cnn_ucf101_fusion.m` and
`network_surgery/insert_conv_layers.m`), cited where used.

Layouts: per-segment maps are `maps_nchw` with N = B*K; stacked over time they are `maps_bcthw` with T = K.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vfx.errors import UsageError
from vfx.train.params import FUSIONS, SPATIAL_FUSIONS, TEMPORAL_FUSIONS  # noqa: F401 - named here too


# Weights of (rgb, flow) in the identity initialisation of the 3D conv fusion filter: the release's
# '2sumAB' (`cnn_ucf101_fusion.m`: kernel = cat(.25 * eye, .75 * eye) times a 3x3x3 Gaussian, sigma 1).
CONV3D_INIT_WEIGHTS = (0.25, 0.75)


class SpatialFusion(nn.Module):
    """y = f(x_rgb, x_flow) at every location (Sec. 3.1); inputs `[N, D, h, w]` with equal shapes.

    sum / max: elementwise, D channels. concat: 2D channels, flow after rgb. conv: concat then a 1x1 conv
    (2D -> D, bias) and ReLU, initialised as the sum of the two streams (identity on each half; the release
    also adds the ReLU, `insert_conv_layers.m`). bilinear: the outer product x_rgb x_flow^T averaged over all
    locations, signed square root and L2 normalisation (Sec. 3.1, "Bilinear fusion"), a D*D vector returned
    as a `[N, D*D, 1, 1]` map. Averaging instead of summing over locations changes nothing after the L2
    normalisation.
    """

    def __init__(self, kind: str, channels: int):
        super().__init__()
        if kind not in SPATIAL_FUSIONS:
            raise UsageError(f"unknown fusion {kind!r}; choose one of {list(FUSIONS)}")
        self.kind = kind
        self.channels = channels
        self.conv: nn.Conv2d | None = None
        if kind == "conv":
            self.conv = nn.Conv2d(2 * channels, channels, kernel_size=1, bias=True)
            with torch.no_grad():
                eye = torch.eye(channels)
                self.conv.weight.copy_(torch.cat([eye, eye], dim=1)[:, :, None, None])
                self.conv.bias.zero_()

    @property
    def out_channels(self) -> int:
        return {"concat": 2 * self.channels, "bilinear": self.channels * self.channels}.get(self.kind, self.channels)

    def forward(self, rgb_nchw: torch.Tensor, flow_nchw: torch.Tensor) -> torch.Tensor:
        if rgb_nchw.shape != flow_nchw.shape:
            raise UsageError(
                f"the two streams give maps of different shapes {tuple(rgb_nchw.shape)} and "
                f"{tuple(flow_nchw.shape)}; use the same crop size and backbone for both"
            )
        if self.kind == "sum":
            return rgb_nchw + flow_nchw
        if self.kind == "max":
            return torch.maximum(rgb_nchw, flow_nchw)
        if self.kind == "concat":
            return torch.cat([rgb_nchw, flow_nchw], dim=1)
        if self.kind == "conv":
            return F.relu(self.conv(torch.cat([rgb_nchw, flow_nchw], dim=1)))
        return bilinear_pool(rgb_nchw, flow_nchw)[:, :, None, None]


def bilinear_pool(a_nchw: torch.Tensor, b_nchw: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Mean over locations of the outer products a b^T, signed sqrt, L2-normalised: `[N, D_a * D_b]`."""
    n, da, h, w = a_nchw.shape
    db = b_nchw.shape[1]
    a = a_nchw.reshape(n, da, h * w)
    b = b_nchw.reshape(n, db, h * w)
    y = torch.bmm(a, b.transpose(1, 2)).reshape(n, da * db) / (h * w)
    # d/dy sqrt(|y|) is infinite at 0; the eps inside keeps the gradient finite for exact zeros (ReLU maps).
    y = torch.sign(y) * torch.sqrt(y.abs() + eps)
    return F.normalize(y, p=2.0, dim=1)


def _gaussian_3x3x3(sigma: float = 1.0) -> torch.Tensor:
    r = torch.arange(-1.0, 2.0)
    z, y, x = torch.meshgrid(r, r, r, indexing="ij")
    g = torch.exp(-(x * x + y * y + z * z) / (2 * sigma * sigma))
    return g / g.sum()


class TemporalFusion(nn.Module):
    """Fuses K per-segment maps `[B, C, K, h, w]` and classifies them (Sec. 3.2, Fig. 3).

    avg: 2D pooling only, i.e. average over locations and over the K segments (the average of the K
    per-segment predictions, since the classifier is linear). pool3d: 3D max pooling over a 2x2 spatial
    window and all K segments, stride 2 (the release replaces pool5 by a Pooling3D of size
    [2 2 nFrames], stride [2 2 2], `cnn_ucf101_fusion.m`), then the average of what remains. conv3d: a
    3x3x3 conv (C -> `conv3d_channels`, padding 1, bias, ReLU), initialised as identity times a normalised
    3x3x3 Gaussian (sigma 1; for concatenated input the halves get weights 0.25 for rgb and 0.75 for flow, as
    in the release), then the same 3D pooling. A ResNet has no fc6/fc7 after pool5, so a global average and
    a dropout + linear classifier follow in every case.
    """

    def __init__(
        self,
        kind: str,
        in_channels: int,
        num_classes: int,
        *,
        num_segments: int,
        conv3d_channels: int | None = None,
        dropout: float = 0.5,
    ):
        super().__init__()
        if kind not in TEMPORAL_FUSIONS:
            raise UsageError(f"unknown temporal fusion {kind!r}; choose one of {list(TEMPORAL_FUSIONS)}")
        self.kind = kind
        self.num_segments = num_segments
        self.conv3d: nn.Conv3d | None = None
        channels = in_channels
        if kind == "conv3d":
            out = conv3d_channels or in_channels
            self.conv3d = nn.Conv3d(in_channels, out, kernel_size=3, padding=1, bias=True)
            self._init_conv3d(in_channels, out)
            channels = out
        self.out_channels = channels
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)

    def _init_conv3d(self, cin: int, cout: int) -> None:
        weight = torch.zeros(cout, cin, 3, 3, 3)
        if cin == cout:
            groups = [(0, 1.0)]
        elif cin == 2 * cout:
            groups = [(0, CONV3D_INIT_WEIGHTS[0]), (cout, CONV3D_INIT_WEIGHTS[1])]
        else:
            groups = []
        g = _gaussian_3x3x3()
        for offset, scale in groups:
            for o in range(cout):
                weight[o, offset + o] = scale * g
        with torch.no_grad():
            if groups:
                self.conv3d.weight.copy_(weight)
            self.conv3d.bias.zero_()

    def _pool3d(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        _, _, t, h, w = x_bcthw.shape
        kernel = (t, min(2, h), min(2, w))
        return F.max_pool3d(x_bcthw, kernel_size=kernel, stride=(2, 2, 2), ceil_mode=True)

    def features(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """The fused descriptor fed to the classifier, `[B, out_channels]`."""
        if self.kind == "conv3d":
            x_bcthw = F.relu(self.conv3d(x_bcthw))
        if self.kind in ("pool3d", "conv3d"):
            x_bcthw = self._pool3d(x_bcthw)
        return x_bcthw.mean(dim=(2, 3, 4))

    def forward(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x_bcthw)))


def stack_segments(maps_nchw: torch.Tensor, batch: int) -> torch.Tensor:
    """`[B*K, C, h, w]` (segment-major within each video) -> `[B, C, K, h, w]`."""
    n, c, h, w = maps_nchw.shape
    k = n // batch
    return maps_nchw.reshape(batch, k, c, h, w).transpose(1, 2)


class FusionHead(nn.Module):
    """Everything after the backbones: spatial fusion (or none), temporal fusion, classifier(s).

    Inputs are per-stream maps `[B*K, D, h, w]`. Returns a list of logits, one per classifier: one for
    single-stream and spatially fused models, two (rgb, flow) for late fusion, whose softmax scores are
    averaged at test time (`scores`).
    """

    def __init__(
        self,
        streams: tuple[str, ...],
        fusion: str,
        temporal_fusion: str,
        channels: dict[str, int],
        num_classes: int,
        *,
        num_segments: int,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.streams = streams
        self.fusion = fusion if len(streams) == 2 else "none"
        if len(streams) == 2 and fusion not in FUSIONS:
            raise UsageError(f"unknown fusion {fusion!r}; choose one of {list(FUSIONS)}")
        self.spatial: SpatialFusion | None = None
        self.temporal = nn.ModuleDict()
        common = dict(num_segments=num_segments, dropout=dropout)
        if self.fusion == "bilinear" and temporal_fusion == "conv3d":
            raise UsageError(
                "bilinear fusion pools away the spatial layout (one D*D vector per segment), so a 3D conv "
                "has nothing to convolve; use --temporal-fusion avg or pool3d with --fusion bilinear"
            )
        if self.fusion in SPATIAL_FUSIONS:
            if channels["rgb"] != channels["flow"]:
                raise UsageError(
                    f"spatial fusion needs equal channel counts, got rgb {channels['rgb']} and flow "
                    f"{channels['flow']}; use --fusion late"
                )
            self.spatial = SpatialFusion(self.fusion, channels["rgb"])
            self.temporal["fused"] = TemporalFusion(
                temporal_fusion, self.spatial.out_channels, num_classes, conv3d_channels=channels["rgb"], **common
            )
        else:
            for s in streams:
                self.temporal[s] = TemporalFusion(temporal_fusion, channels[s], num_classes, **common)

    def forward(self, maps: dict[str, torch.Tensor], batch: int) -> list[torch.Tensor]:
        if self.spatial is not None:
            fused = self.spatial(maps["rgb"], maps["flow"])
            return [self.temporal["fused"](stack_segments(fused, batch))]
        return [self.temporal[s](stack_segments(maps[s], batch)) for s in self.streams]


def scores(logits: list[torch.Tensor]) -> torch.Tensor:
    """Class probabilities: the softmax, averaged over the classifiers (late fusion averages two)."""
    return torch.stack([F.softmax(z, dim=1) for z in logits]).mean(dim=0)


def loss(logits: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Sum of the cross-entropies of every classifier: late fusion trains both streams independently."""
    return sum(F.cross_entropy(z, labels) for z in logits)
