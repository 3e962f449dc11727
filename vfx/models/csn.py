"""ir-CSN ResNet-101 (Tran, Wang, Torresani & Feiszli, ICCV 2019), pytorchvideo `csn_r101` ("32x2").

Faithful to pytorchvideo/models/hub/csn.py `csn_r101` (create_csn in models/csn.py), whose hub file
`CSN_32x2_R101.pyth` is `{"model_state": ...}` with keys `blocks.0.conv.weight`,
`blocks.1.res_blocks.0.branch2.conv_b.weight`, ..., `blocks.5.proj.weight`.

Layout (create_csn defaults with model_depth=101, stem_pool=MaxPool3d, head_pool_kernel_size=(4, 7, 7)):
- stem: 3x7x7 conv, stride 1x2x2, 64 channels, BN, ReLU, 1x3x3 max-pool stride 1x2x2;
- res2..res5: [3, 4, 23, 3] interaction-reduced bottlenecks: 1x1x1 conv, a depthwise 3x3x3 conv (groups =
  channels, `stage_conv_b_width_per_group=1`), 1x1x1 conv; the stride sits on the depthwise conv: spatial
  (1, 2, 2, 2), temporal (1, 2, 2, 2) per stage, so 32 frames end as 4;
- head: 4x7x7 average pool (the whole 32-frame clip at 224), no dropout (`dropout_rate=0`), Linear 2048 -> 400.
Input: 32 frames every 2nd frame ("32x2"), [0, 1] RGB, mean 0.45, std 0.225, 224 crops.
"""

from __future__ import annotations

import torch

from vfx.models.registry import ModelCard, register
from vfx.models.resnet3d import ResNet3d, kinetics_spec, rename_keys

_PYTORCHVIDEO_RULES = (
    (r"^blocks\.0\.", "stem."),
    (r"^blocks\.1\.", "res2."),
    (r"^blocks\.2\.", "res3."),
    (r"^blocks\.3\.", "res4."),
    (r"^blocks\.4\.", "res5."),
    (r"^blocks\.5\.proj\.", "fc."),
)


class CsnR101(ResNet3d):
    def __init__(self, num_classes: int = 400, num_frames: int = 32, frame_step: int = 2, size: int = 224):
        super().__init__(
            num_classes=num_classes, depth=101, stem_kernel=(3, 7, 7), kernels_a=(((1, 1, 1),),) * 4,
            kernel_b=(3, 3, 3), temporal_strides=(1, 2, 2, 2), depthwise=True, dropout=0.0,
            spec=kinetics_spec(num_frames, frame_step, size, 2048),
        )  # fmt: skip

    @staticmethod
    def key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return csn_key_map(state)


def csn_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pytorchvideo `blocks.N.*` -> `stem`, `res2..res5`, `fc`; our own names pass through."""
    return rename_keys(state, _PYTORCHVIDEO_RULES)


@register("csn_r101", card=ModelCard(
    weights="pytorchvideo MODEL_ZOO.md (Kinetics-400): https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/CSN_32x2_R101.pyth",
    weights_format="a pytorchvideo hub .pyth file {'model_state': {'blocks.0.conv.weight', ...}}",
    paper_gflops=75.62, paper_params_m=22.21,
    paper_source="pytorchvideo MODEL_ZOO.md, CSN R101 32x2: per view of 256^2 (PySlowFast tests 3 crops of 256)",
))  # fmt: skip
def csn_r101(num_classes: int = 400, **kw) -> CsnR101:
    return CsnR101(num_classes=num_classes, **kw)
