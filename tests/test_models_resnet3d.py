"""i3d_r50, csn_r101, slowfast_r50 (pytorchvideo hub) and i3d_nl_r50 (PySlowFast): checkpoints and shapes.

The enumerators below restate, independently of vfx/models, the key names and shapes of the reference
state dicts: pytorchvideo/models/resnet.py + csn.py + slowfast.py + hub/*.py (`Net.blocks`, ResBlock
`branch1_conv` / `branch1_norm` / `branch2.conv_a ... norm_c`, `multipathway_blocks`, `multipathway_fusion.
conv_fast_to_slow`, head `proj`) and PySlowFast video_model_builder.py ResNet + resnet_helper.py +
nonlocal_helper.py (`s1.pathway0_stem`, `sK.pathway0_resI.branch2.a/a_bn/...`, `sK.pathway0_nonlocalI.
conv_theta/phi/g/out, bn`, `head.projection`). Their SHA-256 over sorted `key shape` lines is the digest of
the real reference state_dict() (pytorchvideo 0.1.5 hub builders; SlowFast main, ResNet(cfg) with
configs/Kinetics/c2/I3D_NLN_8x8_R50.yaml; 320 / 626 / 662 / 385 keys; recorded once in the environment of
scripts/parity_pytorchvideo_pyslowfast_hf.py), so the enumerators are the references' own names.
"""

from __future__ import annotations

import hashlib

import pytest
import torch

import vfx.models as M
from vfx.errors import CheckpointError, UsageError
from vfx.models.resnet3d import NonLocal, head_pool


def bn(prefix, c):
    return {f"{prefix}.{k}": (c,) for k in ("weight", "bias", "running_mean", "running_var")} | {f"{prefix}.num_batches_tracked": ()}


def pv_block(prefix, cin, inner, cout, ka, kb, strided, groups=1):
    keys = {}
    if cin != cout or strided:
        keys[f"{prefix}.branch1_conv.weight"] = (cout, cin, 1, 1, 1)
        keys |= bn(f"{prefix}.branch1_norm", cout)
    keys[f"{prefix}.branch2.conv_a.weight"] = (inner, cin, ka, 1, 1)
    keys |= bn(f"{prefix}.branch2.norm_a", inner)
    keys[f"{prefix}.branch2.conv_b.weight"] = (inner, inner // groups, *kb)
    keys |= bn(f"{prefix}.branch2.norm_b", inner)
    keys[f"{prefix}.branch2.conv_c.weight"] = (cout, inner, 1, 1, 1)
    keys |= bn(f"{prefix}.branch2.norm_c", cout)
    return keys


def pv_stages(prefix_of_stage, depths, kernels_a, kb=(1, 3, 3), depthwise=False, widths=(64, 256), cin=64, extra_in=(0, 0, 0, 0), div=1):
    keys = {}
    for s, depth in enumerate(depths):
        inner, cout = widths[0] * 2**s // div, widths[1] * 2**s // div
        for i in range(depth):
            c_in = cin + extra_in[s] if i == 0 else cout
            ka = kernels_a[s][i % len(kernels_a[s])]
            keys |= pv_block(f"{prefix_of_stage(s)}.res_blocks.{i}", c_in, inner, cout, ka, kb, i == 0 and s > 0,
                             inner if depthwise else 1)  # fmt: skip
        cin = cout
    return keys


I3D_KA = [[3], [3, 1], [3, 1], [1, 3]]


def pytorchvideo_i3d_r50(nc=400):
    keys = {"blocks.0.conv.weight": (64, 3, 5, 7, 7)} | bn("blocks.0.norm", 64)
    keys |= pv_stages(lambda s: f"blocks.{[1, 3, 4, 5][s]}", (3, 4, 6, 3), I3D_KA)
    return keys | {"blocks.6.proj.weight": (nc, 2048), "blocks.6.proj.bias": (nc,)}


def pytorchvideo_csn_r101(nc=400):
    keys = {"blocks.0.conv.weight": (64, 3, 3, 7, 7)} | bn("blocks.0.norm", 64)
    # every block of a CSN stage strides in time too, so the first block always has a projected shortcut
    keys |= pv_stages(lambda s: f"blocks.{s + 1}", (3, 4, 23, 3), [[1]] * 4, kb=(3, 3, 3), depthwise=True)
    return keys | {"blocks.5.proj.weight": (nc, 2048), "blocks.5.proj.bias": (nc,)}


def pytorchvideo_slowfast_r50(nc=400):
    keys = {"blocks.0.multipathway_blocks.0.conv.weight": (64, 3, 1, 7, 7)} | bn("blocks.0.multipathway_blocks.0.norm", 64)
    keys |= {"blocks.0.multipathway_blocks.1.conv.weight": (8, 3, 5, 7, 7)} | bn("blocks.0.multipathway_blocks.1.norm", 8)
    for k, c_fast in enumerate((8, 32, 64, 128)):  # fusion after the stems and res2..res4: 7x1x1 conv to 2x fast
        keys[f"blocks.{k}.multipathway_fusion.conv_fast_to_slow.weight"] = (2 * c_fast, c_fast, 7, 1, 1)
        keys |= bn(f"blocks.{k}.multipathway_fusion.norm", 2 * c_fast)
    fused = (16, 64, 128, 256)
    keys |= pv_stages(lambda s: f"blocks.{s + 1}.multipathway_blocks.0", (3, 4, 6, 3), [[1], [1], [3], [3]], extra_in=fused)
    keys |= pv_stages(lambda s: f"blocks.{s + 1}.multipathway_blocks.1", (3, 4, 6, 3), [[3]] * 4, cin=8, div=8)
    return keys | {"blocks.6.proj.weight": (nc, 2304), "blocks.6.proj.bias": (nc,)}


def pyslowfast_i3d_nl_r50(nc=400):
    keys = {"s1.pathway0_stem.conv.weight": (64, 3, 5, 7, 7)} | bn("s1.pathway0_stem.bn", 64)
    cin = 64
    for s, depth in enumerate((3, 4, 6, 3)):
        inner, cout = 64 * 2**s, 256 * 2**s
        for i in range(depth):
            p = f"s{s + 2}.pathway0_res{i}"
            c_in = cin if i == 0 else cout
            if i == 0:
                keys[f"{p}.branch1.weight"] = (cout, c_in, 1, 1, 1)
                keys |= bn(f"{p}.branch1_bn", cout)
            keys[f"{p}.branch2.a.weight"] = (inner, c_in, I3D_KA[s][i % len(I3D_KA[s])], 1, 1)
            keys |= bn(f"{p}.branch2.a_bn", inner)
            keys[f"{p}.branch2.b.weight"] = (inner, inner, 1, 3, 3)
            keys |= bn(f"{p}.branch2.b_bn", inner)
            keys[f"{p}.branch2.c.weight"] = (cout, inner, 1, 1, 1)
            keys |= bn(f"{p}.branch2.c_bn", cout)
            if i in ((), (1, 3), (1, 3, 5), ())[s]:  # NONLOCAL.LOCATION of I3D_NLN_8x8_R50.yaml
                q = f"s{s + 2}.pathway0_nonlocal{i}"
                for conv in ("conv_theta", "conv_phi", "conv_g"):
                    keys[f"{q}.{conv}.weight"] = (cout // 2, cout, 1, 1, 1)
                    keys[f"{q}.{conv}.bias"] = (cout // 2,)
                keys[f"{q}.conv_out.weight"] = (cout, cout // 2, 1, 1, 1)
                keys[f"{q}.conv_out.bias"] = (cout,)
                keys |= bn(f"{q}.bn", cout)
        cin = cout
    return keys | {"head.projection.weight": (nc, 2048), "head.projection.bias": (nc,)}


OFFICIAL = {
    "i3d_r50": pytorchvideo_i3d_r50,
    "csn_r101": pytorchvideo_csn_r101,
    "slowfast_r50": pytorchvideo_slowfast_r50,
    "i3d_nl_r50": pyslowfast_i3d_nl_r50,
}
# sha256 of "\n".join(f"{key} {tuple(shape)}" for key, shape in sorted(reference.state_dict().items()))
REFERENCE_DIGESTS = {
    "i3d_r50": "60fa99d35e662721706727b13ccf3e786755082dd44580fc62359481ae29817a",
    "csn_r101": "8cc407142dadb3c8292819d2557985bab1b34f1ca3713e3ddca092e93db090c4",
    "slowfast_r50": "b64258d537dd0d36112ed878c11546389102ac459f198d1924d33a3dbf2ebe30",
    "i3d_nl_r50": "ca3d7e4dfd22d2a82889cbf6a0129f56f13b9a70d907b98b956dffabd330e5ed",
}


def digest(keys: dict) -> str:
    return hashlib.sha256("\n".join(f"{k} {tuple(v)}" for k, v in sorted(keys.items())).encode()).hexdigest()


def meta_state(keys: dict) -> dict:
    return {k: torch.empty(v, device="meta") for k, v in keys.items()}


def meta_model(name, **kw):
    with torch.device("meta"):
        return M.create_model(name, **kw)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_enumerated_keys_are_the_references_own(name):
    assert digest(OFFICIAL[name]()) == REFERENCE_DIGESTS[name]


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_reference_container_loads_strictly_and_names_what_is_wrong(name):
    keys = OFFICIAL[name]()
    if name == "i3d_nl_r50":  # PySlowFast save_checkpoint
        wrap = lambda sd: {"epoch": 196, "model_state": sd, "optimizer_state": {"state": {}, "param_groups": []}, "cfg": "MODEL:\n  ARCH: i3d\n"}  # noqa: E731
    else:  # pytorchvideo hub .pyth
        wrap = lambda sd: {"model_state": sd}  # noqa: E731
    meta_model(name).load_weights(wrap(meta_state(keys)))

    some = sorted(k for k in keys if k.endswith("conv_b.weight") or k.endswith("branch2.b.weight"))[3]
    broken = dict(keys)
    del broken[some]
    with pytest.raises(CheckpointError, match=r"missing 1: .*conv_b\.weight"):
        meta_model(name).load_weights(wrap(meta_state(broken)))
    head = "head.projection.weight" if name == "i3d_nl_r50" else max(k for k in keys if k.endswith("proj.weight"))
    wrong = dict(keys) | {head: (400, 1000)}
    with pytest.raises(CheckpointError, match=r"shape mismatch 1: fc\.weight \(400, 1000\) vs model \(400, "):
        meta_model(name).load_weights(wrap(meta_state(wrong)))
    with pytest.raises(CheckpointError, match=r"pass num_classes=10"):
        meta_model(name).load_weights(wrap(meta_state(OFFICIAL[name](nc=10))))
    meta_model(name, num_classes=10).load_weights(wrap(meta_state(OFFICIAL[name](nc=10))))


def test_pyslowfast_file_values_land_in_place(tmp_path):
    """Real tensors through a real .pyth file: spot-check where PySlowFast's names end up."""
    keys = pyslowfast_i3d_nl_r50(nc=5)
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(v, generator=g) if v else torch.tensor(3) for k, v in keys.items()}
    path = tmp_path / "I3D_NLN_8x8_R50.pyth"
    torch.save({"epoch": 1, "model_state": sd, "optimizer_state": {}, "cfg": "x"}, path)
    model = M.create_model("i3d_nl_r50", num_classes=5, weights=path)
    assert torch.equal(model.res3.nonlocal_blocks["3"].conv_phi.bias, sd["s3.pathway0_nonlocal3.conv_phi.bias"])
    assert torch.equal(model.res4.res_blocks[5].branch2.norm_b.running_var, sd["s4.pathway0_res5.branch2.b_bn.running_var"])
    assert torch.equal(model.res2.res_blocks[0].branch1_conv.weight, sd["s2.pathway0_res0.branch1.weight"])
    assert torch.equal(model.stem.norm.weight, sd["s1.pathway0_stem.bn.weight"])
    assert torch.equal(model.fc.bias, sd["head.projection.bias"])


def test_pytorchvideo_slowfast_values_land_in_place():
    keys = pytorchvideo_slowfast_r50(nc=3)
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(v, generator=g) if v else torch.tensor(3) for k, v in keys.items()}
    model = M.create_model("slowfast_r50", num_classes=3, weights={"model_state": sd})
    assert torch.equal(model.stages[0].fast.conv.weight, sd["blocks.0.multipathway_blocks.1.conv.weight"])
    assert torch.equal(model.stages[2].fuse.norm.bias, sd["blocks.2.multipathway_fusion.norm.bias"])
    assert torch.equal(model.stages[4].slow.res_blocks[2].branch2.conv_c.weight, sd["blocks.4.multipathway_blocks.0.res_blocks.2.branch2.conv_c.weight"])
    assert torch.equal(model.fc.weight, sd["blocks.6.proj.weight"])


@pytest.mark.parametrize("name,frames,dim,step", [
    ("i3d_r50", 8, 2048, 8), ("i3d_nl_r50", 8, 2048, 8), ("csn_r101", 32, 2048, 2), ("slowfast_r50", 32, 2304, 2),
])  # fmt: skip
def test_input_spec_is_the_references_transform(name, frames, dim, step):
    spec = M.input_spec(name)
    assert (spec.num_frames, spec.frame_step, spec.size, spec.feature_dim) == (frames, step, 224, dim)
    assert spec.mean == (0.45,) * 3 and spec.std == (0.225,) * 3 and spec.value_range == (0.0, 1.0)


@pytest.mark.parametrize("name,frames", [("i3d_r50", 8), ("i3d_r50", 12), ("i3d_nl_r50", 16), ("csn_r101", 8), ("slowfast_r50", 8), ("slowfast_r50", 12)])
def test_any_clip_length_gives_one_vector_per_clip(name, frames):
    torch.manual_seed(0)
    model = M.create_model(name, num_classes=7)
    x = torch.randn(2, 3, frames, 32, 32)
    with torch.no_grad():
        logits, feats = model(x), model.forward_features(x)
    assert logits.shape == (2, 7) and feats.shape == (2, model.input_spec.feature_dim)
    assert torch.isfinite(feats).all()
    torch.testing.assert_close(logits, model.fc(feats))  # eval: dropout is the identity
    # clips are independent: the batch gives what each clip gives alone (up to float rounding, relative to
    # the largest value: random weights make values spread over several orders of magnitude)
    with torch.no_grad():
        alone = model.forward_features(x[1:])
    assert ((alone - feats[1:]).abs().max() / feats[1:].abs().max()).item() < 1e-4


def test_slowfast_refuses_a_length_the_pathways_cannot_align():
    with pytest.raises(UsageError, match=r"divides by 4.*T=6"):
        M.create_model("slowfast_r50")(torch.zeros(1, 3, 6, 32, 32))


def test_slowfast_slow_pathway_takes_the_linspace_frames():
    """PackPathway: slow = frames linspace(0, 31, 8).long() of a 32-frame clip = 0, 4, 8, 13, 17, 22, 26, 31
    (truncated, not rounded); the fast pathway sees all 32."""
    model = M.create_model("slowfast_r50")
    seen = {}
    model.stages[0].slow.register_forward_pre_hook(lambda m, a: seen.update(slow=a[0]))
    model.stages[0].fast.register_forward_pre_hook(lambda m, a: seen.update(fast=a[0]))
    x = torch.arange(32, dtype=torch.float32).view(1, 1, 32, 1, 1).expand(1, 3, 32, 32, 32).contiguous()
    with torch.no_grad():
        model.forward_features(x)
    assert seen["slow"][0, 0, :, 0, 0].tolist() == [0, 4, 8, 13, 17, 22, 26, 31]
    assert seen["fast"][0, 0, :, 0, 0].tolist() == list(range(32))


def test_head_pool_is_global_at_224_and_averages_7x7_windows_beyond():
    maps = torch.arange(2 * 3 * 4 * 7 * 7, dtype=torch.float64).view(2, 3, 4, 7, 7)
    torch.testing.assert_close(head_pool(maps), maps.mean(dim=(2, 3, 4)))
    big = torch.rand(1, 2, 4, 8, 8, dtype=torch.float64)  # a 256 crop: 2x2 windows of 7x7, whole clip in time
    windows = torch.stack([big[:, :, :, i:i + 7, j:j + 7].mean(dim=(2, 3, 4)) for i in (0, 1) for j in (0, 1)])
    torch.testing.assert_close(head_pool(big), windows.mean(0))


def test_nonlocal_block_matches_its_definition():
    """Embedded Gaussian: y_i = sum_j softmax_j(theta_i . phi_j / sqrt(C/2)) g_j over the 1x2x2-pooled positions."""
    torch.manual_seed(0)
    block = NonLocal(8).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_()
    x = torch.randn(1, 8, 2, 4, 4)
    pooled = torch.nn.functional.max_pool3d(x, (1, 2, 2))
    theta = block.conv_theta(x).flatten(2)[0].T  # [32, 4]
    phi = block.conv_phi(pooled).flatten(2)[0].T  # [8, 4]
    g = block.conv_g(pooled).flatten(2)[0].T
    y = torch.stack([sum(torch.softmax(theta[i] @ phi.T / 2.0, 0)[j] * g[j] for j in range(8)) for i in range(32)])
    expected = x + block.bn(block.conv_out(y.T.reshape(1, 4, 2, 4, 4)))
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected)
