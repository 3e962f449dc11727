"""videomae_b: Hub files (model.safetensors / pytorch_model.bin + config.json) load strictly; shapes; the table.

`hub_keys` restates, independently of vfx/models, the key names and shapes of transformers'
VideoMAEForVideoClassification state dict for the MCG-NJU/videomae-base-finetuned-kinetics config
(modeling_videomae.py: `videomae.embeddings.patch_embeddings.projection`, `videomae.encoder.layer.N.
attention.attention.{query,key,value}.weight`, `q_bias`, `v_bias`, `attention.output.dense`,
`intermediate.dense`, `output.dense`, `layernorm_before/after`, `fc_norm`, `classifier`); its digest is that
of the real state_dict() (transformers 5.24.0), recorded once.
"""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from safetensors.torch import save_file

import vfx.models as M
from vfx.errors import CheckpointError, UsageError
from vfx.models.videomae import sincos_table

HUB_CONFIG = {"model_type": "videomae", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
              "intermediate_size": 3072, "hidden_act": "gelu", "patch_size": 16, "tubelet_size": 2, "num_frames": 16,
              "image_size": 224, "num_channels": 3, "qkv_bias": True, "use_mean_pooling": True, "layer_norm_eps": 1e-12}  # fmt: skip
# digest of transformers 5.24.0 VideoMAEForVideoClassification(config).state_dict() (186 keys): in memory it
# calls the files' q_bias / v_bias `query.bias` / `value.bias` (conversion_mapping.py "videomae"), and writes
# q_bias / v_bias back when it saves; the test renames them the same way before hashing.
REFERENCE_DIGEST = "cd28758a25760bdc2431e936eb2cb9c742111c3e98688d726c8918b4237f0824"


def hub_keys(nc=400, dim=768, depth=12, mlp=3072):
    keys = {"videomae.embeddings.patch_embeddings.projection.weight": (dim, 3, 2, 16, 16),
            "videomae.embeddings.patch_embeddings.projection.bias": (dim,)}  # fmt: skip
    for i in range(depth):
        p = f"videomae.encoder.layer.{i}"
        for name in ("query", "key", "value"):
            keys[f"{p}.attention.attention.{name}.weight"] = (dim, dim)
        keys[f"{p}.attention.attention.q_bias"] = (dim,)
        keys[f"{p}.attention.attention.v_bias"] = (dim,)
        keys |= {f"{p}.attention.output.dense.weight": (dim, dim), f"{p}.attention.output.dense.bias": (dim,)}
        keys |= {f"{p}.intermediate.dense.weight": (mlp, dim), f"{p}.intermediate.dense.bias": (mlp,)}
        keys |= {f"{p}.output.dense.weight": (dim, mlp), f"{p}.output.dense.bias": (dim,)}
        for ln in ("layernorm_before", "layernorm_after"):
            keys |= {f"{p}.{ln}.weight": (dim,), f"{p}.{ln}.bias": (dim,)}
    keys |= {"fc_norm.weight": (dim,), "fc_norm.bias": (dim,), "classifier.weight": (nc, dim), "classifier.bias": (nc,)}
    return keys


SMALL = dict(dim=32, depth=2, heads=2, mlp_dim=64)  # a tiny ViT with the same structure, for real tensors


def seeded(keys, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v, generator=g) * 0.2 for k, v in keys.items()}


def test_enumerated_keys_are_the_hub_files_own():
    in_memory = {k.replace("attention.q_bias", "attention.query.bias").replace("attention.v_bias", "attention.value.bias"): v
                 for k, v in hub_keys().items()}  # fmt: skip
    digest = hashlib.sha256("\n".join(f"{k} {tuple(v)}" for k, v in sorted(in_memory.items())).encode()).hexdigest()
    assert digest == REFERENCE_DIGEST


def test_a_transformers_5_in_memory_state_dict_loads_too():
    keys = {k.replace("attention.q_bias", "attention.query.bias").replace("attention.v_bias", "attention.value.bias"): v
            for k, v in hub_keys(nc=5, dim=32, depth=2, mlp=64).items()}  # fmt: skip
    sd = seeded(keys)
    model = M.create_model("videomae_b", num_classes=5, weights=sd, **SMALL)
    assert torch.equal(model.blocks[1].attn.q_bias, sd["videomae.encoder.layer.1.attention.attention.query.bias"])


def test_hub_safetensors_and_bin_load_the_same(tmp_path):
    sd = seeded(hub_keys(nc=5, dim=32, depth=2, mlp=64))
    (tmp_path / "st").mkdir()
    (tmp_path / "bin").mkdir()
    save_file(sd, tmp_path / "st" / "model.safetensors")
    torch.save(sd, tmp_path / "bin" / "pytorch_model.bin")
    a = M.create_model("videomae_b", num_classes=5, weights=tmp_path / "st" / "model.safetensors", **SMALL)
    b = M.create_model("videomae_b", num_classes=5, weights=tmp_path / "bin" / "pytorch_model.bin", **SMALL)
    assert torch.equal(a.blocks[1].attn.v_bias, sd["videomae.encoder.layer.1.attention.attention.v_bias"])
    assert torch.equal(a.blocks[0].attn.proj.weight, sd["videomae.encoder.layer.0.attention.output.dense.weight"])
    assert torch.equal(a.blocks[0].fc2.bias, sd["videomae.encoder.layer.0.output.dense.bias"])
    assert torch.equal(a.blocks[1].norm2.weight, sd["videomae.encoder.layer.1.layernorm_after.weight"])
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_full_size_hub_keys_load_strictly_and_name_what_is_wrong():
    keys = hub_keys()
    meta = lambda **kw: _meta("videomae_b", **kw)  # noqa: E731
    meta().load_weights({k: torch.empty(v, device="meta") for k, v in keys.items()})
    broken = {k: torch.empty(v, device="meta") for k, v in keys.items() if not k.endswith("layer.7.attention.attention.q_bias")}
    with pytest.raises(CheckpointError, match=r"missing 1: blocks\.7\.attn\.q_bias"):
        meta().load_weights(broken)
    wrong = {k: torch.empty(v, device="meta") for k, v in keys.items()} | {"fc_norm.weight": torch.empty(1024, device="meta")}
    with pytest.raises(CheckpointError, match=r"shape mismatch 1: fc_norm\.weight \(1024,\) vs model \(768,\)"):
        meta().load_weights(wrong)
    # a non-mean-pooling checkpoint has a final `videomae.layernorm` and no fc_norm
    cls = {k: torch.empty(v, device="meta") for k, v in keys.items() if not k.startswith("fc_norm")}
    cls |= {"videomae.layernorm.weight": torch.empty(768, device="meta"), "videomae.layernorm.bias": torch.empty(768, device="meta")}
    with pytest.raises(CheckpointError, match=r"missing 2: fc_norm\.bias, fc_norm\.weight; unexpected 2: videomae\.layernorm"):
        meta().load_weights(cls)


def _meta(name, **kw):
    with torch.device("meta"):
        return M.create_model(name, **kw)


def test_config_json_beside_the_file_is_checked(tmp_path):
    sd = seeded(hub_keys(nc=5, dim=32, depth=2, mlp=64))
    save_file(sd, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(HUB_CONFIG | {"hidden_size": 32, "intermediate_size": 64}))
    with pytest.raises(CheckpointError, match=r"config\.json: describes another network than videomae_b: hidden_size=32"):
        M.create_model("videomae_b", num_classes=5, weights=tmp_path / "model.safetensors", **SMALL)
    (tmp_path / "config.json").write_text(json.dumps(HUB_CONFIG | {"layer_norm_eps": 1e-6}))
    with pytest.raises(CheckpointError, match=r"layer_norm_eps=1e-06 \(videomae_b: 1e-12\)"):
        M.create_model("videomae_b", weights=tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json: not a readable config\.json"):
        M.create_model("videomae_b", weights=tmp_path / "model.safetensors")


def test_a_truncated_safetensors_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a loadable safetensors file"):
        M.create_model("videomae_b", weights=path, **SMALL)


def test_position_table_is_the_sinusoid_of_the_reference():
    """get_sinusoid_encoding_table: angle(p, j) = p / 10000^(2 floor(j/2) / d); sin on even j, cos on odd."""
    t = sincos_table(1568, 768)
    assert t.shape == (1568, 768) and t.dtype == torch.float32
    for p, j in [(0, 0), (0, 1), (1, 0), (1, 1), (1567, 766), (1567, 767), (700, 301)]:
        angle = p / 10000 ** (2 * (j // 2) / 768)
        assert t[p, j].item() == pytest.approx(math.sin(angle) if j % 2 == 0 else math.cos(angle), abs=1e-7)


def test_spec_shapes_and_lengths():
    spec = M.input_spec("videomae_b")
    assert (spec.num_frames, spec.frame_step, spec.size, spec.feature_dim) == (16, 4, 224, 768)
    assert spec.mean == (0.485, 0.456, 0.406) and spec.std == (0.229, 0.224, 0.225)
    torch.manual_seed(0)
    model = M.create_model("videomae_b", num_classes=3, **SMALL)
    for t, size in [(4, 32), (8, 48)]:
        x = torch.randn(2, 3, t, size, size)
        with torch.no_grad():
            maps = model.forward_feature_maps(x)
            feats = model.forward_features(x)
        assert maps.shape == (2, 32, t // 2, size // 16, size // 16)
        assert feats.shape == (2, 32) and model(x).shape == (2, 3)
        # fc_norm of the mean token: zero mean, unit variance before the affine part (weight 1, bias 0 here)
        torch.testing.assert_close(feats.mean(1), torch.zeros(2), atol=1e-5, rtol=0)
    with pytest.raises(UsageError, match=r"T divisible by 2 and H, W divisible by 16, got T=3, H=32, W=32"):
        model(torch.zeros(1, 3, 3, 32, 32))
