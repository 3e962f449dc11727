"""I3D ResNet-50 (pytorchvideo `i3d_r50`, "8x8" Kinetics-400): a ResNet-50 inflated to 3D.

Faithful to pytorchvideo/models/hub/resnet.py `i3d_r50` (create_resnet in models/resnet.py), whose hub
file `I3D_8x8_R50.pyth` is `{"model_state": ...}` with keys `blocks.0.conv.weight`,
`blocks.1.res_blocks.0.branch2.conv_a.weight`, ..., `blocks.6.proj.weight` (the shared loader unwraps
`model_state`; `i3d_r50_key_map` renames `blocks.N` to our stage names).

Layout (hub/resnet.py i3d_r50 and create_resnet defaults):
- stem: 5x7x7 conv, stride 1x2x2, 64 channels, BN, ReLU, 1x3x3 max-pool stride 1x2x2;
- res2..res5: [3, 4, 6, 3] bottlenecks, conv_a temporal kernels res2 3, res3 and res4 alternating 3/1,
  res5 alternating 1/3 (the I3D kernels of PySlowFast _TEMPORAL_KERNEL_BASIS["i3d"]); conv_b 1x3x3,
  spatial stride 2 in res3..res5, no temporal stride;
- a 2x1x1 max-pool (stride 2) after res2 (`stage1_pool`), so 8 frames become 4;
- head: 4x7x7 average pool (the whole 8-frame clip at 224), dropout 0.5, Linear 2048 -> 400.
Input: 8 frames taken every 8th frame ("8x8"), [0, 1] RGB normalised with mean 0.45, std 0.225
(pytorchvideo hub tutorial and PySlowFast DATA.MEAN/STD), 224 crops (PySlowFast tests on three 256 crops
of a 256 short side: `--crop three --crop-size 256` does that).
"""

from __future__ import annotations

import torch

from vfx.models.registry import ModelCard, register
from vfx.models.resnet3d import ResNet3d, kinetics_spec, rename_keys

# conv_a kernels per stage, cycled over its blocks (hub/resnet.py i3d_r50 stage_conv_a_kernel_size).
I3D_KERNELS_A = (
    ((3, 1, 1),),
    ((3, 1, 1), (1, 1, 1)),
    ((3, 1, 1), (1, 1, 1)),
    ((1, 1, 1), (3, 1, 1)),
)

# pytorchvideo Net.blocks index -> our module (blocks.2 is the parameter-free stage1 pool).
_PYTORCHVIDEO_RULES = (
    (r"^blocks\.0\.", "stem."),
    (r"^blocks\.1\.", "res2."),
    (r"^blocks\.3\.", "res3."),
    (r"^blocks\.4\.", "res4."),
    (r"^blocks\.5\.", "res5."),
    (r"^blocks\.6\.proj\.", "fc."),
)


class I3dR50(ResNet3d):
    def __init__(self, num_classes: int = 400, num_frames: int = 8, frame_step: int = 8, size: int = 224, dropout: float = 0.5):
        super().__init__(
            num_classes=num_classes, depth=50, stem_kernel=(5, 7, 7), kernels_a=I3D_KERNELS_A, pool1=True,
            dropout=dropout, spec=kinetics_spec(num_frames, frame_step, size, 2048),
        )  # fmt: skip

    @staticmethod
    def key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return i3d_r50_key_map(state)


def i3d_r50_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pytorchvideo `blocks.N.*` -> `stem`, `res2..res5`, `fc`; our own names pass through."""
    return rename_keys(state, _PYTORCHVIDEO_RULES)


@register("i3d_r50", card=ModelCard(
    weights="pytorchvideo MODEL_ZOO.md (Kinetics-400): https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/I3D_8x8_R50.pyth",
    weights_format="a pytorchvideo hub .pyth file {'model_state': {'blocks.0.conv.weight', ...}}",
    paper_gflops=37.53, paper_params_m=28.04,
    paper_source="pytorchvideo MODEL_ZOO.md, I3D R50 8x8: per view of 256^2 (PySlowFast tests 3 crops of 256)",
))  # fmt: skip
def i3d_r50(num_classes: int = 400, **kw) -> I3dR50:
    return I3dR50(num_classes=num_classes, **kw)
