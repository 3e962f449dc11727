"""Fake official checkpoints, built from the official code's key names and shapes, load strictly.

The enumerators below restate, independently of vfx/models, the module trees of the official code:
piergiaj/pytorch-i3d pytorch_i3d.py; mit-han-lab/temporal-shift-module ops/models.py + ops/temporal_shift.py
(torchvision ResNet-50, conv1 wrapped as `.net`, `new_fc`); arunos728/MotionSqueeze resnet_TSM.py +
models.py (`chnl_reduction`, `flow_refinement`, the unused `bn2`, Conv1d `new_fc`); tefantasy/CorrNet
corr_net.py / corr.py / conv_2dplus1d.py. Tensors are random; each test checks a value lands where it should.
"""

import math

import pytest
import torch

import vfx.models as M
from vfx.errors import CheckpointError


def bn(prefix, c, tracked=True):
    keys = {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,), f"{prefix}.running_var": (c,)}
    if tracked:
        keys[f"{prefix}.num_batches_tracked"] = ()
    return keys


def official_i3d(in_channels, num_classes):
    keys = {}

    def unit(name, cin, cout, k):
        keys[f"{name}.conv3d.weight"] = (cout, cin, *k)
        keys.update(bn(f"{name}.bn", cout, tracked=False))  # released files predate num_batches_tracked

    unit("Conv3d_1a_7x7", in_channels, 64, (7, 7, 7))
    unit("Conv3d_2b_1x1", 64, 64, (1, 1, 1))
    unit("Conv3d_2c_3x3", 64, 192, (3, 3, 3))
    mixed = [("Mixed_3b", 192, [64, 96, 128, 16, 32, 32]), ("Mixed_3c", 256, [128, 128, 192, 32, 96, 64]),
             ("Mixed_4b", 480, [192, 96, 208, 16, 48, 64]), ("Mixed_4c", 512, [160, 112, 224, 24, 64, 64]),
             ("Mixed_4d", 512, [128, 128, 256, 24, 64, 64]), ("Mixed_4e", 512, [112, 144, 288, 32, 64, 64]),
             ("Mixed_4f", 528, [256, 160, 320, 32, 128, 128]), ("Mixed_5b", 832, [256, 160, 320, 32, 128, 128]),
             ("Mixed_5c", 832, [384, 192, 384, 48, 128, 128])]  # fmt: skip
    one, three = (1, 1, 1), (3, 3, 3)
    for name, cin, o in mixed:
        unit(f"{name}.b0", cin, o[0], one)
        unit(f"{name}.b1a", cin, o[1], one)
        unit(f"{name}.b1b", o[1], o[2], three)
        unit(f"{name}.b2a", cin, o[3], one)
        unit(f"{name}.b2b", o[3], o[4], three)
        unit(f"{name}.b3b", cin, o[5], one)
    keys["logits.conv3d.weight"] = (num_classes, 1024, 1, 1, 1)
    keys["logits.conv3d.bias"] = (num_classes,)
    return keys


def torchvision_resnet(depth, conv1_suffix=""):
    """torchvision ResNet keys without fc; `conv1_suffix` '.net' for TSM's TemporalShift wrapper."""
    bottleneck = depth >= 50
    blocks = {18: [2, 2, 2, 2], 50: [3, 4, 6, 3]}[depth]
    exp = 4 if bottleneck else 1
    keys = {"conv1.weight": (64, 3, 7, 7), **bn("bn1", 64)}
    cin = 64
    for li, (planes, n) in enumerate(zip([64, 128, 256, 512], blocks), start=1):
        for i in range(n):
            p = f"layer{li}.{i}"
            if bottleneck:
                keys[f"{p}.conv1{conv1_suffix}.weight"] = (planes, cin, 1, 1)
                keys[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                keys[f"{p}.conv3.weight"] = (planes * exp, planes, 1, 1)
                keys.update(bn(f"{p}.bn3", planes * exp))
            else:
                keys[f"{p}.conv1{conv1_suffix}.weight"] = (planes, cin, 3, 3)
                keys[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            keys.update(bn(f"{p}.bn1", planes))
            keys.update(bn(f"{p}.bn2", planes))
            if i == 0 and (li > 1 or cin != planes * exp):
                keys[f"{p}.downsample.0.weight"] = (planes * exp, cin, 1, 1)
                keys.update(bn(f"{p}.downsample.1", planes * exp))
            cin = planes * exp
    return keys


def official_tsm(num_classes):
    keys = {f"module.base_model.{k}": v for k, v in torchvision_resnet(50, ".net").items()}
    keys.update({"module.new_fc.weight": (num_classes, 2048), "module.new_fc.bias": (num_classes,)})
    return keys


def official_msnet(depth, num_classes):
    exp = 4 if depth >= 50 else 1
    base = torchvision_resnet(depth)
    base.update(bn("bn2", 128))  # defined in resnet_TSM.ResNet.__init__, never used
    base["chnl_reduction.0.weight"] = (64, 128 * exp, 1, 1)
    base.update(bn("chnl_reduction.1", 64))
    chans = [(3, 16, 7), (16, 32, 3), (32, 64, 3), (64, 128 * exp, 3)]
    for i, (cin, cout, k) in enumerate(chans, start=1):
        p = f"flow_refinement.conv{i}"
        base[f"{p}.0.weight"] = (cin, 1, k, k)
        base.update(bn(f"{p}.1", cin))
        base[f"{p}.3.weight"] = (cout, cin, 1, 1)
        base.update(bn(f"{p}.4", cout))
    keys = {f"module.base_model.{k}": v for k, v in base.items()}
    keys.update({"module.new_fc.weight": (num_classes, 512 * exp, 1), "module.new_fc.bias": (num_classes,)})
    return keys


def official_corrnet(layer_sizes, corr_locs, num_frames, num_classes):
    keys = {"conv1.0.weight": (32, 3, 1, 7, 7), "conv1.0.bias": (32,), **bn("conv1.1", 32)}
    cin, t = 32, num_frames
    for s, (planes, size, locs, tstride) in enumerate(zip([64, 128, 256, 512], layer_sizes, corr_locs, [1, 1, 2, 2])):
        t //= tstride
        for i in range(size):
            p = f"res{s + 2}.{i}"
            if i in (locs or []):
                c4 = cin // 4
                keys[f"{p}.encode_conv.0.weight"] = (c4, cin, 1, 1, 1)
                keys.update(bn(f"{p}.encode_conv.1", c4))
                keys[f"{p}.correlation.filter_weight"] = (c4, t, 7, 7)
                keys[f"{p}.decode_conv.0.weight"] = (cin, 7 * 7 * 32, 1, 1, 1)
                keys.update(bn(f"{p}.decode_conv.1", cin))
                continue
            mid = math.floor(27 * planes * planes / (9 * planes + 3 * planes))
            keys[f"{p}.conv1.0.weight"] = (planes, cin, 1, 1, 1)
            keys.update(bn(f"{p}.conv1.1", planes))
            keys[f"{p}.conv2.0.spatial_conv.weight"] = (mid, planes, 1, 3, 3)
            keys[f"{p}.conv2.0.spatial_conv.bias"] = (mid,)
            keys.update(bn(f"{p}.conv2.0.bn", mid))
            keys[f"{p}.conv2.0.temporal_conv.weight"] = (planes, mid, 3, 1, 1)
            keys[f"{p}.conv2.0.temporal_conv.bias"] = (planes,)
            keys.update(bn(f"{p}.conv2.1", planes))
            keys[f"{p}.conv3.0.weight"] = (planes * 4, planes, 1, 1, 1)
            keys.update(bn(f"{p}.conv3.1", planes * 4))
            if i == 0:
                keys[f"{p}.downsample_conv.0.weight"] = (planes * 4, cin, 1, 1, 1)
                keys.update(bn(f"{p}.downsample_conv.1", planes * 4))
            cin = planes * 4
    keys.update({"fc.weight": (num_classes, 2048), "fc.bias": (num_classes,)})
    return keys


def random_state(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randint(0, 100, s, generator=g) if k.endswith("num_batches_tracked") else torch.randn(s, generator=g)
            for k, s in shapes.items()}  # fmt: skip


def test_i3d_rgb_and_flow_load_released_pytorch_i3d_files(tmp_path):
    for name, ch, classes in [("i3d_rgb", 3, 400), ("i3d_flow", 2, 157)]:  # rgb_imagenet.pt / flow_charades.pt layouts
        sd = random_state(official_i3d(ch, classes))
        assert not any(k.endswith("num_batches_tracked") for k in sd)
        path = tmp_path / f"{name}.pt"
        # The released files are bare state dicts in the pre-1.6 (non-zip) serialisation.
        torch.save(sd, path, _use_new_zipfile_serialization=False)
        model = M.create_model(name, num_classes=classes, weights=path)
        own = model.state_dict()
        assert len(own) == len(sd) + sum(k.endswith("num_batches_tracked") for k in own)
        assert torch.equal(own["Mixed_4e.b2b.bn.running_var"], sd["Mixed_4e.b2b.bn.running_var"])
        assert torch.equal(own["logits.conv3d.bias"], sd["logits.conv3d.bias"])


def test_tsm_loads_the_training_script_checkpoint_format(tmp_path):
    sd = random_state(official_tsm(400))
    path = tmp_path / "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth"
    torch.save({"epoch": 50, "arch": "resnet50", "state_dict": sd, "best_prec1": 71.2}, path)
    own = M.create_model("tsm_r50", weights=path).state_dict()
    assert len(own) == len(sd)
    assert torch.equal(own["backbone.layer3.5.conv1.weight"], sd["module.base_model.layer3.5.conv1.net.weight"])
    assert torch.equal(own["fc.weight"], sd["module.new_fc.weight"])


@pytest.mark.parametrize("name,depth", [("msnet_r18", 18), ("msnet_r50", 50)])
def test_msnet_loads_the_training_script_checkpoint_format(tmp_path, name, depth):
    sd = random_state(official_msnet(depth, 174))
    path = tmp_path / "MotionSqueeze_rgb_model_best.pth.tar"
    torch.save({"epoch": 75, "arch": "MS", "state_dict": sd, "best_prec1": 50.0}, path)
    own = M.create_model(name, num_classes=174, weights=path).state_dict()
    assert len(own) == len(sd) - 5  # the unused bn2 (weight, bias, mean, var, count) is dropped
    assert torch.equal(own["motion.transform.conv4.3.weight"], sd["module.base_model.flow_refinement.conv4.3.weight"])
    assert torch.equal(own["motion.reduce.1.running_mean"], sd["module.base_model.chnl_reduction.1.running_mean"])
    assert torch.equal(own["fc.weight"], sd["module.new_fc.weight"][:, :, 0])


def test_corrnet_26_loads_a_pyslowfast_checkpoint(tmp_path):
    sd = random_state(official_corrnet([3, 3, 3, 2], [[2], [2], [2], None], 16, 400))
    path = tmp_path / "checkpoint_epoch_00350.pyth"
    torch.save({"epoch": 350, "model_state": sd, "optimizer_state": {}, "cfg": "CORR_NET: {TYPE: corr_26}"}, path)
    own = M.create_model("corrnet_26", weights=path).state_dict()
    assert len(own) == len(sd)
    assert torch.equal(own["res4.2.correlation.filter_weight"], sd["res4.2.correlation.filter_weight"])


@pytest.mark.parametrize("name,sizes,locs", [
    ("corrnet_50", [4, 5, 7, 3], [[3], [4], [6], None]),
    ("corrnet_101", [4, 5, 25, 3], [[3], [4], [12, 24], None]),
    ("r2plus1d_26", [2, 2, 2, 2], [None] * 4),
])  # fmt: skip
def test_corrnet_key_names_and_shapes_match_the_reimplementation(name, sizes, locs):
    # Names and shapes only (meta device): these networks are too big to save in a unit test.
    with torch.device("meta"):
        own = M.create_model(name, num_frames=32).state_dict()
    expected = official_corrnet(sizes, locs, 32, 400)
    assert {k: tuple(v.shape) for k, v in own.items()} == expected


def test_mismatch_lists_missing_unexpected_and_mis_shaped_keys(tmp_path):
    sd = random_state(official_tsm(400))
    del sd["module.base_model.layer1.0.bn1.weight"]
    sd["module.base_model.extra.weight"] = torch.zeros(3)
    sd["module.new_fc.weight"] = torch.zeros(400, 1024)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": sd}, path)
    with pytest.raises(CheckpointError) as err:
        M.create_model("tsm_r50", weights=path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    assert "missing 1: backbone.layer1.0.bn1.weight" in msg
    assert "unexpected 1: backbone.extra.weight" in msg
    assert "shape mismatch 1: fc.weight (400, 1024) vs model (400, 2048)" in msg


def test_wrong_model_for_a_checkpoint_is_refused_not_partially_loaded(tmp_path):
    path = tmp_path / "i3d.pt"
    torch.save(random_state(official_i3d(3, 400)), path)
    with pytest.raises(CheckpointError, match=r"i3d.pt: does not match I3D; .*shape mismatch 1: Conv3d_1a_7x7.conv3d.weight \(64, 3, 7, 7, 7\) vs model \(64, 2, 7, 7, 7\)"):
        M.create_model("i3d_flow", weights=path)


def test_another_class_count_says_which_num_classes_to_pass(tmp_path):
    path = tmp_path / "rgb_charades.pt"
    torch.save(random_state(official_i3d(3, 157)), path)
    with pytest.raises(CheckpointError, match=r"rgb_charades.pt: .*logits.conv3d.bias \(157,\) vs model \(400,\).* pass num_classes=157\)$"):
        M.create_model("i3d_rgb", weights=path)


def test_unreadable_files_name_the_file_and_reason(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"notes.txt: not a loadable PyTorch checkpoint"):
        M.create_model("tsm_r50", width=8, weights=text)
    with pytest.raises(CheckpointError, match=r"missing.pt: checkpoint file not found"):
        M.create_model("tsm_r50", width=8, weights=tmp_path / "missing.pt")
    listed = tmp_path / "list.pt"
    torch.save([1, 2], listed)
    with pytest.raises(CheckpointError, match=r"list.pt: expected a dict of tensors, found list"):
        M.create_model("tsm_r50", width=8, weights=listed)


def test_our_own_state_dicts_round_trip(tmp_path):
    for name, kw in [("tsm_r50", {"width": 8}), ("msnet_r50", {"width": 8}), ("r2plus1d_26", {})]:
        torch.manual_seed(0)
        model = M.create_model(name, num_classes=5, **kw)
        path = tmp_path / f"{name}.pt"
        torch.save({"state_dict": model.state_dict()}, path)
        again = M.create_model(name, num_classes=5, weights=path, **kw)
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
