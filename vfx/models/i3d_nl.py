"""I3D ResNet-50 with non-local blocks (Wang, Girshick, Gupta & He, CVPR 2018), as PySlowFast builds it.

Faithful to facebookresearch/SlowFast `configs/Kinetics/c2/I3D_NLN_8x8_R50.yaml` (MODEL.ARCH i3d, ResNet
model builder in slowfast/models/video_model_builder.py, blocks in resnet_helper.py / nonlocal_helper.py /
head_helper.py). Its checkpoints are PySlowFast `.pyth` files `{"epoch", "model_state", "optimizer_state",
"cfg"}` with keys `s1.pathway0_stem.conv.weight`, `s2.pathway0_res0.branch2.a.weight`, `..._bn`,
`s3.pathway0_nonlocal1.conv_theta.weight`, `head.projection.weight`; `i3d_nl_key_map` renames them.

Layout (the config over slowfast/config/defaults.py):
- the I3D ResNet-50 of i3d_r50.py (same stem, temporal kernels, 2x1x1 pool after res2, stride on the 3x3
  conv: RESNET.STRIDE_1X1 False), BN eps 1e-5;
- NONLOCAL.LOCATION [[[]], [[1, 3]], [[1, 3, 5]], [[]]]: a non-local block after blocks 1 and 3 of res3
  and after blocks 1, 3 and 5 of res4; INSTANTIATION softmax; NONLOCAL.POOL 1x2x2 on phi and g (default);
  GROUP 1 (no temporal folding); inner width C/2 (resnet_helper.py ResStage);
- head (head_helper.py ResNetBasicHead): `pathway0_avgpool` with window (NUM_FRAMES / 2, 7, 7) = the whole
  clip at 224, dropout 0.5, `projection` Linear 2048 -> 400; in eval mode PySlowFast applies a softmax
  after the projection and averages over windows; `model(x)` returns the projection (logits, before that
  softmax), averaged over windows for crops larger than 224.
Input: DATA.NUM_FRAMES 8, SAMPLING_RATE 8, mean 0.45, std 0.225 (defaults.py), 224 crops (TRAIN_CROP_SIZE;
the config tests on three 256 crops: TEST_CROP_SIZE 256, TEST.NUM_SPATIAL_CROPS 3).
"""

from __future__ import annotations

import torch

from vfx.models.i3d_r50 import I3D_KERNELS_A
from vfx.models.registry import ModelCard, register
from vfx.models.resnet3d import ResNet3d, kinetics_spec, rename_keys

NONLOCAL_AFTER = ((), (1, 3), (1, 3, 5), ())

_PYSLOWFAST_RULES = (
    (r"^s1\.pathway0_stem\.bn\.", "stem.norm."),
    (r"^s1\.pathway0_stem\.", "stem."),
    (r"^s([2-5])\.pathway0_res(\d+)\.", r"res\1.res_blocks.\2."),
    (r"^s([2-5])\.pathway0_nonlocal(\d+)\.", r"res\1.nonlocal_blocks.\2."),
    (r"\.branch1\.", ".branch1_conv."),
    (r"\.branch1_bn\.", ".branch1_norm."),
    (r"\.branch2\.([abc])\.", r".branch2.conv_\1."),
    (r"\.branch2\.([abc])_bn\.", r".branch2.norm_\1."),
    (r"^head\.projection\.", "fc."),
)


class I3dNlR50(ResNet3d):
    def __init__(self, num_classes: int = 400, num_frames: int = 8, frame_step: int = 8, size: int = 224, dropout: float = 0.5):
        super().__init__(
            num_classes=num_classes, depth=50, stem_kernel=(5, 7, 7), kernels_a=I3D_KERNELS_A, pool1=True,
            nonlocal_after=NONLOCAL_AFTER, dropout=dropout, spec=kinetics_spec(num_frames, frame_step, size, 2048),
        )  # fmt: skip

    @staticmethod
    def key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return i3d_nl_key_map(state)


def i3d_nl_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """PySlowFast `sK.pathway0_*` / `head.projection` -> `stem`, `resK`, `fc`; our own names pass through."""
    return rename_keys(state, _PYSLOWFAST_RULES)


@register("i3d_nl_r50", card=ModelCard(
    weights="PySlowFast MODEL_ZOO.md, Kinetics/c2/I3D_NLN_8x8_R50: https://dl.fbaipublicfiles.com/pyslowfast/model_zoo/"
    "kinetics400/I3D_NLN_8x8_R50.pkl (a Caffe2 .pkl; what --weights takes is the .pyth PySlowFast saves after loading it "
    "with TRAIN.CHECKPOINT_TYPE caffe2)",
    weights_format="a PySlowFast .pyth file {'epoch', 'model_state': {'s1.pathway0_stem.conv.weight', ..., "
    "'s3.pathway0_nonlocal1.conv_theta.weight', 'head.projection.weight'}, 'optimizer_state', 'cfg'}",
))  # fmt: skip
def i3d_nl_r50(num_classes: int = 400, **kw) -> I3dNlR50:
    return I3dNlR50(num_classes=num_classes, **kw)
