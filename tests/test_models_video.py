"""Second-round backbones of models-a: torchvision's R3D / MC3 / R(2+1)D and S3D, IG-65M R(2+1)D-34, TSN,
SmallBigNet. Key names and shapes of the reference code, strict loading of each release format, what the
reference computes at other clip lengths, and `vfx features --model NAME` end to end.

Key names and shapes below are restated from the reference code, independently of vfx/models: torchvision
models/video/resnet.py and s3d.py, moabitcoin/ig65m-pytorch ig65m/models.py (the Caffe2 widths 288 / 576 /
1152 of the first block's second conv, BatchNorm eps 1e-3), mmaction2 mmaction/models/backbones/resnet.py
(mmcv ConvModule names), xhl-video/SmallBigNet models/blocks.py. The numerical comparison with the
reference code itself is scripts/parity_models.py (it needs torchvision and the checkouts).
"""

from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

import vfx
import vfx.models as M
from vfx.cli import app
from vfx.errors import CheckpointError
from vfx.models.resnet import ResNet2d
from vfx.models.smallbignet import _max_clip

MINE = ["r3d_18", "mc3_18", "r2plus1d_18", "r2plus1d_34", "s3d", "tsn_r50", "smallbignet_r50"]


def meta_model(name, **kw):
    with torch.device("meta"):
        return M.create_model(name, **kw)


def meta_state(model) -> dict[str, torch.Tensor]:
    return {k: torch.empty(v.shape, dtype=v.dtype, device="meta") for k, v in model.state_dict().items()}


def seeded_state(name, seed=0, **kw) -> dict[str, torch.Tensor]:
    """A model's state dict with random BN statistics too, so that a wrong mapping changes the output."""
    torch.manual_seed(seed)
    model = M.create_model(name, **kw)
    state = model.state_dict()
    for k, v in state.items():
        if k.endswith("running_var") or (k.endswith(".weight") and v.dim() == 1):
            state[k] = torch.rand_like(v) + 0.5
        elif k.endswith("running_mean") or (k.endswith(".bias") and v.dim() == 1):
            state[k] = torch.randn_like(v) * 0.1
    return state


@pytest.mark.parametrize(
    "name, shapes",
    [
        ("r3d_18", {"stem.0.weight": (64, 3, 3, 7, 7), "layer2.0.conv1.0.weight": (128, 64, 3, 3, 3),
                    "layer2.0.downsample.0.weight": (128, 64, 1, 1, 1), "fc.weight": (400, 512)}),
        ("mc3_18", {"layer1.0.conv1.0.weight": (64, 64, 3, 3, 3), "layer2.0.conv1.0.weight": (128, 64, 1, 3, 3)}),
        # torchvision: one middle width per block, (in * out * 27) // (in * 9 + 3 * out) = 230 for 64 -> 128
        ("r2plus1d_18", {"stem.0.weight": (45, 3, 1, 7, 7), "stem.3.weight": (64, 45, 3, 1, 1),
                         "layer2.0.conv1.0.0.weight": (230, 64, 1, 3, 3), "layer2.0.conv2.0.0.weight": (230, 128, 1, 3, 3),
                         "layer2.0.conv1.0.1.running_var": (230,), "layer2.0.conv1.0.3.weight": (128, 230, 3, 1, 1)}),
        # ig65m models.py replaces the first block's conv2[0] of layers 2-4 by Conv2Plus1D(c, c, 288 / 576 / 1152)
        ("r2plus1d_34", {"layer2.0.conv2.0.0.weight": (288, 128, 1, 3, 3), "layer3.0.conv2.0.0.weight": (576, 256, 1, 3, 3),
                         "layer4.0.conv2.0.3.weight": (512, 1152, 3, 1, 1), "layer2.0.conv1.0.0.weight": (230, 64, 1, 3, 3),
                         "layer3.5.conv2.1.weight": (256,), "layer4.2.conv2.0.0.weight": (1152, 512, 1, 3, 3)}),
        ("s3d", {"features.0.0.0.weight": (64, 3, 1, 7, 7), "features.0.1.0.weight": (64, 64, 7, 1, 1),
                 "features.2.0.weight": (64, 64, 1, 1, 1), "features.5.branch1.1.0.0.weight": (128, 96, 1, 3, 3),
                 "features.15.branch3.1.0.weight": (128, 832, 1, 1, 1), "classifier.1.weight": (400, 1024, 1, 1, 1)}),
        ("smallbignet_r50", {"conv1.weight": (64, 3, 1, 7, 7), "layer2.0.big1.1.weight": (128,), "layer2.0.big2.1.weight": (128,),
                             "layer2.0.big3.1.weight": (512,), "layer4.2.big3.1.running_var": (2048,),
                             "layer2.0.downsample.0.weight": (512, 256, 1, 1, 1), "fc.weight": (400, 2048)}),
    ],
)  # fmt: skip
def test_reference_key_names_and_shapes(name, shapes):
    own = meta_model(name).state_dict()
    for key, shape in shapes.items():
        assert tuple(own[key].shape) == shape, key


def test_reference_settings_that_change_numbers():
    r34 = meta_model("r2plus1d_34")
    assert {m.eps for m in r34.modules() if isinstance(m, torch.nn.BatchNorm3d)} == {1e-3}
    assert {m.eps for m in meta_model("r2plus1d_18").modules() if isinstance(m, torch.nn.BatchNorm3d)} == {1e-5}
    assert {m.eps for m in meta_model("s3d").modules() if isinstance(m, torch.nn.BatchNorm3d)} == {1e-3}
    assert not any(".big" in k for k in meta_model("smallbignet_r50").state_dict() if k.startswith("layer1."))
    # MC3's shortcut is 2D in layers 2-4 (Conv3DNoTemporal.get_downsample_stride), R3D's 3D
    assert meta_model("mc3_18").layer2[0].downsample[0].stride == (1, 2, 2)
    assert meta_model("r3d_18").layer2[0].downsample[0].stride == (2, 2, 2)
    # torchvision's parameter counts (weights meta num_params)
    counts = {"r3d_18": 33371472, "mc3_18": 11695440, "r2plus1d_18": 31505325, "s3d": 8320048}
    for name, n in counts.items():
        assert sum(p.numel() for p in meta_model(name).parameters()) == n, name


def test_input_specs_from_the_references_transforms():
    spec = M.input_spec("r2plus1d_18")
    assert (spec.num_frames, spec.size, spec.short_side, spec.frame_step) == (16, 112, 128, 2)
    assert spec.mean == (0.43216, 0.394666, 0.37645) and spec.std == (0.22803, 0.22145, 0.216989)
    assert (M.input_spec("r2plus1d_34").num_frames, M.input_spec("r2plus1d_34").frame_step) == (32, 1)
    assert (M.input_spec("s3d").size, M.input_spec("s3d").short_side) == (224, 256)
    sb = M.input_spec("smallbignet_r50")
    assert (sb.num_frames, sb.frame_step, sb.mean) == (8, 8, (0.485, 0.456, 0.406))
    tsn = M.input_spec("tsn_r50")
    assert (tsn.sampling, tsn.num_frames, tsn.feature_dim) == ("segments", 25, 2048)


# --- strict loading of each format --------------------------------------------------------------------


def test_torchvision_plain_state_dict_loads_and_mismatches_are_listed(tmp_path):
    state = seeded_state("mc3_18")
    path = tmp_path / "mc3_18-a90a0ba3.pth"
    torch.save(state, path)
    x = torch.randn(1, 3, 4, 32, 32)
    torch.manual_seed(5)
    model = M.create_model("mc3_18", weights=path)
    reference = M.create_model("mc3_18")
    reference.load_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference.eval()(x), rtol=0, atol=0)

    broken = dict(state)
    del broken["layer3.1.conv2.1.running_var"]
    broken["layer2.0.conv1.0.weight"] = torch.zeros(128, 64, 3, 3, 3)  # a 3D conv where MC3 has a 2D one
    torch.save(broken, path)
    with pytest.raises(CheckpointError) as err:
        M.create_model("mc3_18", weights=path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: does not match VideoResNet; missing 1: layer3.1.conv2.1.running_var")
    assert "shape mismatch 1: layer2.0.conv1.0.weight (128, 64, 3, 3, 3) vs model (128, 64, 1, 3, 3)" in msg

    state["fc.weight"], state["fc.bias"] = torch.zeros(10, 512), torch.zeros(10)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"the checkpoint has 10 classes: pass num_classes=10"):
        M.create_model("mc3_18", weights=path)
    assert M.create_model("mc3_18", num_classes=10, weights=path).fc.out_features == 10


def test_ig65m_widths_are_required_and_torchvision_widths_refused():
    model = meta_model("r2plus1d_34")
    model.load_weights(meta_state(model))  # its own layout loads
    # An R(2+1)D-34 built with torchvision's widths (no ig65m fix): the three replaced convs are listed.
    wrong = meta_state(model)
    for layer, c, tv_mid in ((2, 128, 230), (3, 256, 460), (4, 512, 921)):
        wrong[f"layer{layer}.0.conv2.0.0.weight"] = torch.empty(tv_mid, c, 1, 3, 3, device="meta")
    with pytest.raises(CheckpointError) as err:
        model.load_weights(wrong)
    assert "shape mismatch 3: layer2.0.conv2.0.0.weight (230, 128, 1, 3, 3) vs model (288, 128, 1, 3, 3)" in str(err.value)


def test_wrapper_prefixes_are_stripped_in_one_place():
    model = meta_model("r3d_18")
    own = meta_state(model)
    for prefix in ("module.", "model.", "backbone.", "module.model."):
        model.load_weights({"state_dict": {prefix + k: v for k, v in own.items()}})
    # TSN keeps its ResNet under `backbone.`: there the prefix is part of the name and stays.
    tsn = meta_model("tsn_r50")
    tsn.load_weights({"module." + k: v for k, v in meta_state(tsn).items()})


def to_mmaction(tv_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision resnet names -> mmaction2 ResNet / TSNHead names (mmcv ConvModule: `.conv`, `.bn`)."""
    out = {}
    for k, v in tv_state.items():
        if k.startswith("fc."):
            out["cls_head.fc_cls." + k[3:]] = v
            continue
        k = k.replace("downsample.0.", "downsample.conv.").replace("downsample.1.", "downsample.bn.")
        k = re.sub(r"(^|\.)conv(\d)\.", r"\1conv\2.conv.", k)
        k = re.sub(r"(^|\.)bn(\d)\.", r"\1conv\2.bn.", k)
        out["backbone." + k] = v
    return out


def test_tsn_loads_torchvision_resnet50_and_mmaction2_checkpoints(tmp_path):
    ours = seeded_state("tsn_r50", width=8, num_classes=7)
    tv = {k[len("backbone."):] if k.startswith("backbone.") else k: v for k, v in ours.items()}
    assert "layer1.0.downsample.1.running_mean" in tv and "conv1.weight" in tv  # torchvision names
    mm = to_mmaction(tv)
    assert {"backbone.conv1.conv.weight", "backbone.conv1.bn.running_var", "backbone.layer1.0.conv3.bn.weight",
            "backbone.layer2.0.downsample.conv.weight", "cls_head.fc_cls.bias"} <= set(mm)  # fmt: skip
    torch.save(tv, tmp_path / "resnet50.pth")
    torch.save({"meta": {"epoch": 100, "mmaction2_version": "1.2.0"}, "state_dict": mm}, tmp_path / "tsn.pth")

    x = torch.randn(2, 3, 3, 32, 32)
    a = M.create_model("tsn_r50", width=8, num_classes=7, weights=tmp_path / "resnet50.pth")
    b = M.create_model("tsn_r50", width=8, num_classes=7, weights=tmp_path / "tsn.pth")
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)
        # TSN = a 2D ResNet on each segment, then the average (of features, and so of logits)
        net = ResNet2d(50, num_classes=7, width=8).eval()
        net.load_state_dict(tv)
        frames = x.transpose(1, 2).reshape(6, 3, 32, 32)
        torch.testing.assert_close(a.forward_features(x), net.forward_pooled(frames).view(2, 3, -1).mean(1))
        torch.testing.assert_close(a(x), net(frames).view(2, 3, -1).mean(1), rtol=1e-5, atol=1e-6)

    del mm["backbone.layer1.0.conv2.bn.running_mean"]
    mm["backbone.layer1.0.conv1.conv.weight"] = torch.zeros(8, 8, 3, 3)
    torch.save({"meta": {}, "state_dict": mm}, tmp_path / "tsn.pth")
    with pytest.raises(CheckpointError) as err:
        M.create_model("tsn_r50", width=8, num_classes=7, weights=tmp_path / "tsn.pth")
    msg = str(err.value)
    assert "missing 1: backbone.layer1.0.bn2.running_mean" in msg
    assert "shape mismatch 1: backbone.layer1.0.conv1.weight (8, 8, 3, 3) vs model (8, 8, 1, 1)" in msg


def test_smallbignet_main_py_container(tmp_path):
    state = seeded_state("smallbignet_r50", num_classes=5)
    container = {"epoch": 100, "state_dict": {"module." + k: v for k, v in state.items()}, "best_metric": 0.7,
                 "optimizer": {"state": {}, "param_groups": [{"lr": 0.01}]}}  # fmt: skip
    torch.save(container, tmp_path / "smallbig.pth")
    model = M.create_model("smallbignet_r50", num_classes=5, weights=tmp_path / "smallbig.pth")
    torch.testing.assert_close(model.layer2[0].big1[1].weight, state["layer2.0.big1.1.weight"], rtol=0, atol=0)
    del container["state_dict"]["module.layer2.0.big1.1.weight"]
    torch.save(container, tmp_path / "smallbig.pth")
    with pytest.raises(CheckpointError, match=r"missing 1: layer2\.0\.big1\.1\.weight$"):
        M.create_model("smallbignet_r50", num_classes=5, weights=tmp_path / "smallbig.pth")


# --- what the references compute, at other clip lengths -----------------------------------------------


@pytest.mark.parametrize("t", [1, 8, 16])
def test_smallbig_last_big_view_spans_the_whole_clip(t):
    x = torch.randn(2, 3, t, 5, 6)
    # the reference built for t frames: MaxPool3d(kernel=(t, 3, 3), padding=(0, 1, 1), stride=1)
    torch.testing.assert_close(_max_clip(x), F.max_pool3d(x, (t, 3, 3), 1, (0, 1, 1)), rtol=0, atol=0)


@pytest.mark.parametrize(
    "name, shape, dim",
    [("r3d_18", (1, 3, 4, 32, 32), 512), ("mc3_18", (1, 3, 3, 32, 32), 512), ("r2plus1d_18", (2, 3, 4, 32, 32), 512),
     ("s3d", (1, 3, 8, 32, 32), 1024), ("smallbignet_r50", (1, 3, 4, 32, 32), 2048), ("smallbignet_r50", (1, 3, 16, 32, 32), 2048)],
)  # fmt: skip
def test_logits_and_features_at_small_inputs(name, shape, dim):
    torch.manual_seed(0)
    model = M.create_model(name, num_classes=6)
    x = torch.randn(*shape)
    with torch.no_grad():
        logits, feats = model(x), model.forward_features(x)
    assert logits.shape == (shape[0], 6) and feats.shape == (shape[0], dim)
    assert torch.isfinite(logits).all()


def test_models_table_lists_weights_and_papers():
    result = CliRunner().invoke(app, ["models", *MINE])
    assert result.exit_code == 0, result.output
    r3d = next(line for line in result.output.splitlines() if line.startswith("r3d_18 "))
    assert "33.37M" in r3d and " 40.7 " in r3d and "  512  16 frames (step 2) x 112^2 (short side 128)" in r3d
    assert "40.697 GFLOPs (-0.0%), 33.371M (+0.0%)" in r3d
    assert "r3d_18: torchvision R3D_18_Weights.KINETICS400_V1: https://download.pytorch.org/models/r3d_18-b3b3357e.pth" in result.output
    assert "smallbignet_r50: none released by the authors" in result.output
    assert "--weights takes an mmaction2 checkpoint {'meta', 'state_dict'" in result.output
    (row,) = json.loads(CliRunner().invoke(app, ["models", "tsn_r50", "--json"]).output)
    assert row["card"]["paper_gflops"] == 102.7 and abs(row["gflops"] / 102.7 - 1) < 0.01


# --- vfx features end to end --------------------------------------------------------------------------

TINY = ["--short-side", "32", "--crop-size", "32", "--no-progress", "--threads", "1", "--num-clips", "2"]


@pytest.mark.parametrize(
    "name, clip_args, dim",
    [("r3d_18", ["--clip-len", "4"], 512), ("mc3_18", ["--clip-len", "4"], 512), ("r2plus1d_18", ["--clip-len", "4"], 512),
     ("r2plus1d_34", ["--clip-len", "4"], 512), ("s3d", ["--clip-len", "8"], 1024), ("smallbignet_r50", ["--clip-len", "4"], 2048)],
)  # fmt: skip
def test_cli_features_random_weights(tmp_path, samples, name, clip_args, dim):
    result = CliRunner().invoke(app, ["features", str(samples["carphone_pristine"]), "-o", str(tmp_path / "s"), "--model", name,
                                      "--engine", "serial", *clip_args, *TINY])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"WARNING: {name} run with RANDOM weights" in result.stderr
    store = vfx.open_store(tmp_path / "s")
    feats = store.read_features("carphone_pristine")
    assert feats.shape == (2, dim) and feats.dtype == "float32" and (feats != 0).any()
    params = json.loads((tmp_path / "s" / "vfx-store.json").read_text())["params"]
    (model,) = params["models"]
    assert model["name"] == name and model["weights_sha256"] == "random-init" and model["feature_dim"] == dim
    spec = M.input_spec(name)
    assert model["input_spec"]["mean"] == list(spec.mean) and model["input_spec"]["short_side"] == spec.short_side
    # no --frame-step: the model's own (torchvision's 15 fps = every 2nd frame; SmallBigNet's t_stride 8)
    assert params["clips"]["frame_step"] == spec.frame_step
    first, last = store.clip_frames("carphone_pristine")[0]
    assert last - first == (int(clip_args[1]) - 1) * spec.frame_step


def test_cli_features_tsn_segments_and_spec_defaults_on_ray(tmp_path, samples):
    # No --short-side: TSN's own 256 (mmaction2 Resize(-1, 256)); segments sampling as its test pipeline.
    result = CliRunner().invoke(app, ["features", str(samples["carphone_pristine"]), "-o", str(tmp_path / "s"), "--model", "tsn_r50",
                                      "--segments", "2", "--crop-size", "32", "--no-progress", "--threads", "1",
                                      "--engine", "ray", "--workers", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    store = vfx.open_store(tmp_path / "s")
    assert store.read_features("carphone_pristine").shape == (1, 2048)
    params = json.loads((tmp_path / "s" / "vfx-store.json").read_text())["params"]
    assert params["spatial"]["short_side"] == 256 and params["clips"]["mode"] == "segments"
    assert params["models"][0]["input_spec"]["sampling"] == "segments"


def test_every_model_says_where_its_weights_are_and_what_weights_takes():
    from vfx.models.registry import get_card

    for name in M.list_models():
        card = get_card(name)
        assert card is not None and card.weights and card.weights_format, name
        if card.paper_gflops is not None or card.paper_params_m is not None:
            assert card.paper_source, name
