"""VideoMAE ViT-B/16 (Tong, Song, Wang & Wang, NeurIPS 2022), fine-tuned on Kinetics-400.

Faithful to Hugging Face transformers `VideoMAEForVideoClassification` (models/videomae/
modeling_videomae.py) with the configuration of `MCG-NJU/videomae-base-finetuned-kinetics`: hidden 768,
12 layers of 12 heads, MLP 3072 with exact (erf) GELU, patch 16, tubelet 2, qkv_bias (a bias on q and v,
none on k), LayerNorm eps 1e-12 in the blocks, `use_mean_pooling` (no final encoder norm; `fc_norm`, a
LayerNorm with PyTorch's default eps 1e-5, on the mean of all tokens), Linear 768 -> 400, no dropout.

Weights: the Hub's `model.safetensors` or `pytorch_model.bin`, whose keys are the files' own:
`videomae.embeddings.patch_embeddings.projection.weight`, `videomae.encoder.layer.N.attention.attention.
{query,key,value}.weight`, `...attention.attention.q_bias` / `v_bias`, `...attention.output.dense`,
`...intermediate.dense`, `...output.dense`, `...layernorm_before` / `layernorm_after`, `fc_norm`,
`classifier`. `videomae_key_map` renames them to ours (transformers >= 5 calls q_bias / v_bias
`query.bias` / `value.bias` in memory and writes the file names back when it saves; both load). A `config.json` beside the file is checked against
this architecture (a different model is refused by name, not by a shape that happens to fit).

Position embedding: the fixed 1D sin-cos table over the flattened (t, h, w) token order
(`get_sinusoid_encoding_table`: angle pos / 10000^(2 floor(j/2) / 768), sin on even j, cos on odd j),
built for the number of tokens of the input: the table the reference builds when configured for that
clip length and size (it has no parameters, so any T divisible by 2 and H, W divisible by 16 work).
Input: 16 frames every 4th frame (VideoMAE's Kinetics fine-tuning and test, `--num_frames 16
--sampling_rate 4`), [0, 1] RGB, ImageNet mean/std (transformers VideoMAEImageProcessor defaults:
IMAGENET_DEFAULT_MEAN / STD), 224 crops (that processor resizes the short side to 224 first:
`--short-side 224`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from vfx.errors import CheckpointError, UsageError
from vfx.models.base import VideoBackbone
from vfx.models.registry import ModelCard, register
from vfx.models.resnet3d import rename_keys
from vfx.models.spec import InputSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# config.json of MCG-NJU/videomae-base-finetuned-kinetics: the fields that change the network.
BASE_CONFIG = {
    "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
    "hidden_act": "gelu", "patch_size": 16, "tubelet_size": 2, "num_channels": 3, "qkv_bias": True,
    "use_mean_pooling": True, "layer_norm_eps": 1e-12,
}  # fmt: skip

_HF_RULES = (
    (r"^videomae\.embeddings\.patch_embeddings\.projection\.", "patch_embed."),
    (r"^videomae\.encoder\.layer\.(\d+)\.", r"blocks.\1."),
    (r"\.attention\.attention\.query\.", ".attn.q."),
    (r"\.attention\.attention\.key\.", ".attn.k."),
    (r"\.attention\.attention\.value\.", ".attn.v."),
    (r"\.attention\.attention\.q_bias$", ".attn.q_bias"),
    (r"\.attention\.attention\.v_bias$", ".attn.v_bias"),
    # transformers >= 5 renames q_bias / v_bias to query.bias / value.bias in memory (conversion_mapping.py,
    # reversed when it saves): a state_dict() taken from such a module loads too.
    (r"\.attn\.q\.bias$", ".attn.q_bias"),
    (r"\.attn\.v\.bias$", ".attn.v_bias"),
    (r"\.attention\.output\.dense\.", ".attn.proj."),
    (r"\.intermediate\.dense\.", ".fc1."),
    (r"\.output\.dense\.", ".fc2."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"^classifier\.", "fc."),
)


def sincos_table(num_tokens: int, dim: int) -> torch.Tensor:
    """`[num_tokens, dim]` float32, computed in float64 as the reference's numpy table."""
    # On the CPU explicitly: the table is data, also when the model is built under `torch.device("meta")`.
    pos = torch.arange(num_tokens, dtype=torch.float64, device="cpu")[:, None]
    exponent = (torch.arange(dim, device="cpu") // 2 * 2).to(torch.float64) / dim
    angle = pos / torch.pow(10000.0, exponent)
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.to(torch.float32)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q = F.linear(x, self.q.weight, self.q_bias).view(b, n, self.heads, -1).transpose(1, 2)
        k = F.linear(x, self.k.weight).view(b, n, self.heads, -1).transpose(1, 2)
        v = F.linear(x, self.v.weight, self.v_bias).view(b, n, self.heads, -1).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(head_dim), as the reference
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then + fc2(gelu(fc1(norm2(.))))."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class VideoMAE(VideoBackbone):
    classifier_keys = ("fc.weight", "fc.bias")

    def __init__(self, num_classes: int = 400, num_frames: int = 16, frame_step: int = 4, size: int = 224,
                 dim: int = 768, depth: int = 12, heads: int = 12, mlp_dim: int = 3072, patch: int = 16, tubelet: int = 2):  # fmt: skip
        super().__init__()
        self.input_spec = InputSpec(
            num_frames=num_frames, size=size, channels=3, sampling="dense", value_range=(0.0, 1.0),
            mean=IMAGENET_MEAN, std=IMAGENET_STD, feature_dim=dim, frame_step=frame_step,
        )  # fmt: skip
        self.feature_dim = dim
        self.patch = patch
        self.tubelet = tubelet
        self.patch_embed = nn.Conv3d(3, dim, (tubelet, patch, patch), (tubelet, patch, patch))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_dim, BASE_CONFIG["layer_norm_eps"]) for _ in range(depth))
        self.fc_norm = nn.LayerNorm(dim)
        self.dropout = nn.Identity()
        self.fc = nn.Linear(dim, num_classes)
        self._tables: dict[int, torch.Tensor] = {}
        for m in self.modules():  # the reference's _init_weights: N(0, 0.02) weights, zero biases
            if isinstance(m, (nn.Linear, nn.Conv3d)):
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def check_input(self, x_bcthw: torch.Tensor) -> None:
        super().check_input(x_bcthw)
        t, h, w = x_bcthw.shape[2:]
        if t % self.tubelet or h % self.patch or w % self.patch:
            raise UsageError(
                f"VideoMAE takes clips of T divisible by {self.tubelet} and H, W divisible by {self.patch}, "
                f"got T={t}, H={h}, W={w}"
            )

    def position_table(self, num_tokens: int, like: torch.Tensor) -> torch.Tensor:
        if num_tokens not in self._tables:
            self._tables[num_tokens] = sincos_table(num_tokens, self.feature_dim)
        return self._tables[num_tokens].to(device=like.device, dtype=like.dtype)

    def forward_feature_maps(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """Last block's tokens on their grid `[B, 768, T/2, H/16, W/16]` (before `fc_norm`)."""
        self.check_input(x_bcthw)
        x = self.patch_embed(x_bcthw)
        b, d, t, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)  # tokens in (t, h, w) order
        x = x + self.position_table(t * h * w, x)
        for block in self.blocks:
            x = block(x)
        return x.transpose(1, 2).reshape(b, d, t, h, w)

    def pool_features(self, maps_bdthw: torch.Tensor) -> torch.Tensor:
        """`fc_norm` of the mean token: `[B, 768]`."""
        return self.fc_norm(maps_bdthw.mean(dim=(2, 3, 4)))

    def load_weights(self, weights: str | os.PathLike | Mapping) -> None:
        if not isinstance(weights, Mapping):
            check_hub_config(os.path.join(os.path.dirname(os.fspath(weights)), "config.json"))
        super().load_weights(weights)

    @staticmethod
    def key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return videomae_key_map(state)


def videomae_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Hub file keys -> ours; our own names pass through."""
    return rename_keys(state, _HF_RULES)


def check_hub_config(path: str) -> None:
    """Refuse a Hub `config.json` (when there is one) that describes another network than ViT-B VideoMAE."""
    if not os.path.isfile(path):
        return
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable config.json ({exc})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: not a config.json object")
    wrong = [f"{k}={config[k]!r} (videomae_b: {v!r})" for k, v in BASE_CONFIG.items() if k in config and config[k] != v]
    if config.get("model_type", "videomae") != "videomae":
        wrong.insert(0, f"model_type={config['model_type']!r} (videomae_b: 'videomae')")
    if wrong:
        raise CheckpointError(f"{path}: describes another network than videomae_b: {', '.join(wrong)}")


@register("videomae_b", card=ModelCard(
    weights="Hugging Face Hub MCG-NJU/videomae-base-finetuned-kinetics (model.safetensors or pytorch_model.bin, config.json)",
    weights_format="the Hub's model.safetensors or pytorch_model.bin (its own key names), with its config.json beside it",
    paper_gflops=180.0, paper_params_m=87.0, paper_source="~VideoMAE, Tong et al. 2022, Kinetics-400 table: ViT-B 16x224^2",
))  # fmt: skip
def videomae_b(num_classes: int = 400, **kw) -> VideoMAE:
    return VideoMAE(num_classes=num_classes, **kw)
