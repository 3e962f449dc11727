"""Backbone API, shapes at tiny inputs, and golden numbers for the parts that decide fidelity."""

import json

import pytest
import torch
from typer.testing import CliRunner

import vfx.models as M
from vfx.cli import app
from vfx.errors import UsageError
from vfx.models.corrnet import WeightedCorrelation
from vfx.models.correlation import weighted_correlation
from vfx.models.i3d import same_padding
from vfx.models.msnet import MotionSqueeze, kernel_soft_argmax
from vfx.models.resnet import ResNet2d
from vfx.models.tsm import TemporalShift, install_temporal_shift, temporal_shift

NAMES = sorted([
    "corrnet_101", "corrnet_26", "corrnet_50", "i3d_flow", "i3d_rgb", "msnet_r18", "msnet_r50", "r2plus1d_26", "tsm_r50",
    "csn_r101", "i3d_nl_r50", "i3d_r50", "slowfast_r50", "videomae_b",
    "mc3_18", "r2plus1d_18", "r2plus1d_34", "r3d_18", "s3d", "smallbignet_r50", "tsn_r50",
])


def test_registry_names_are_the_public_ones():
    names = M.list_models()
    assert names == sorted(names)
    assert set(NAMES) <= set(names)


def test_unknown_model_names_the_known_ones():
    with pytest.raises(UsageError, match=r"unknown model 'tsm_r51'; known models: corrnet_101, corrnet_26"):
        M.create_model("tsm_r51")


@pytest.mark.parametrize("name,frames,size,channels,sampling,value_range,mean0,dim", [
    ("i3d_rgb", 64, 224, 3, "dense", (-1.0, 1.0), 0.0, 1024),
    ("i3d_flow", 64, 224, 2, "dense", (-1.0, 1.0), 0.0, 1024),
    ("tsm_r50", 8, 224, 3, "segments", (0.0, 1.0), 0.485, 2048),
    ("msnet_r18", 8, 224, 3, "segments", (0.0, 1.0), 0.485, 512),
    ("msnet_r50", 8, 224, 3, "segments", (0.0, 1.0), 0.485, 2048),
    ("corrnet_26", 16, 224, 3, "dense", (0.0, 1.0), 0.45, 2048),
    ("corrnet_101", 16, 224, 3, "dense", (0.0, 1.0), 0.45, 2048),
    ("r2plus1d_26", 16, 224, 3, "dense", (0.0, 1.0), 0.45, 2048),
])  # fmt: skip
def test_input_specs(name, frames, size, channels, sampling, value_range, mean0, dim):
    spec = M.input_spec(name)
    assert (spec.num_frames, spec.size, spec.channels, spec.sampling) == (frames, size, channels, sampling)
    assert (spec.value_range, spec.mean[0], spec.feature_dim) == (value_range, mean0, dim)


def test_spec_normalise_maps_raw_pixels():
    raw = torch.tensor([0.0, 127.5, 255.0]).view(1, 1, 3, 1, 1).expand(1, 3, 3, 1, 1)
    i3d = M.input_spec("i3d_rgb").normalise(raw)
    torch.testing.assert_close(i3d[0, 0, :, 0, 0], torch.tensor([-1.0, 0.0, 1.0]))
    tsm = M.input_spec("tsm_r50").normalise(raw)
    torch.testing.assert_close(tsm[0, :, 2, 0, 0], torch.tensor([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225]))


@pytest.mark.parametrize("name,kw,x_shape,maps_shape", [
    ("tsm_r50", {"width": 8}, (2, 3, 4, 32, 32), (2, 256, 4, 1, 1)),
    ("msnet_r18", {"width": 8}, (1, 3, 3, 64, 64), (1, 64, 3, 2, 2)),
    ("msnet_r50", {"width": 8}, (1, 3, 3, 64, 64), (1, 256, 3, 2, 2)),
    ("i3d_rgb", {}, (1, 3, 8, 32, 32), (1, 1024, 1, 1, 1)),
    ("i3d_flow", {}, (1, 2, 16, 64, 64), (1, 1024, 2, 2, 2)),
    ("corrnet_26", {"num_frames": 4}, (1, 3, 4, 32, 32), (1, 2048, 1, 1, 1)),
    ("r2plus1d_26", {}, (1, 3, 8, 32, 32), (1, 2048, 2, 1, 1)),
])  # fmt: skip
def test_shapes_at_tiny_inputs(name, kw, x_shape, maps_shape):
    torch.manual_seed(0)
    model = M.create_model(name, num_classes=5, **kw)
    x = torch.randn(x_shape)
    with torch.no_grad():
        maps = model.forward_feature_maps(x)
        feats = model.forward_features(x)
        logits = model(x)
    assert tuple(maps.shape) == maps_shape
    assert tuple(feats.shape) == (x_shape[0], model.input_spec.feature_dim) == (x_shape[0], maps_shape[1])
    assert tuple(logits.shape) == (x_shape[0], 5)
    assert torch.isfinite(logits).all()


def test_tsm_logits_are_per_frame_logits_averaged_over_time():
    torch.manual_seed(0)
    model = M.create_model("tsm_r50", num_classes=5, width=8)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        maps = model.forward_feature_maps(x)  # [B, D, T, h, w]
        per_frame = torch.stack([model.fc(maps[:, :, t].mean(dim=(2, 3))) for t in range(4)], dim=1)
        torch.testing.assert_close(model(x), per_frame.mean(dim=1))
        torch.testing.assert_close(M.forward_features(model, x), maps.mean(dim=(2, 3, 4)))


def test_i3d_head_pools_2x7x7_with_stride_1_then_averages():
    # 224 input, 16 frames: Mixed_5c is [B, 1024, 2, 7, 7]; one 2x7x7 window = the plain mean.
    # With 4 time steps the three overlapping windows weigh the end steps half: (m0 + 2 m1 + 2 m2 + m3) / 6.
    model = M.create_model("i3d_rgb")
    maps = torch.randn(1, 1024, 4, 7, 7)
    m = maps.mean(dim=(3, 4))
    expected = (m[:, :, 0] + 2 * m[:, :, 1] + 2 * m[:, :, 2] + m[:, :, 3]) / 6
    torch.testing.assert_close(model.pool_features(maps), expected)


@pytest.mark.parametrize("size,kernel,stride,pads", [
    (224, 7, 2, (2, 3)), (64, 7, 2, (2, 3)), (112, 3, 2, (0, 1)), (57, 3, 2, (1, 1)),
    (8, 3, 1, (1, 1)), (8, 2, 2, (0, 0)), (7, 2, 2, (0, 1)), (1, 3, 2, (1, 1)), (16, 1, 1, (0, 0)),
])  # fmt: skip
def test_tensorflow_same_padding(size, kernel, stride, pads):
    # TF SAME: output ceil(size / stride); total pad = (out - 1) * stride + kernel - size, the extra one at the back.
    assert same_padding(size, kernel, stride) == pads
    out = -(-size // stride)
    assert sum(pads) == max((out - 1) * stride + kernel - size, 0)


def test_temporal_shift_moves_one_eighth_each_way_with_zeros_at_the_ends():
    # value = 10 * t + c for T=3 frames, C=8 channels: fold = 1.
    x = (10 * torch.arange(3).view(1, 3, 1, 1, 1) + torch.arange(8).view(1, 1, 8, 1, 1)).float()
    out = temporal_shift(x, 8)[0, :, :, 0, 0]
    assert out[:, 0].tolist() == [10.0, 20.0, 0.0]  # channel 0 takes frame t+1
    assert out[:, 1].tolist() == [0.0, 1.0, 11.0]  # channel 1 takes frame t-1
    assert torch.equal(out[:, 2:], x[0, :, 2:, 0, 0])
    # The module form packs T into the batch.
    module_out = TemporalShift(3)(x[0].reshape(3, 8, 1, 1))
    assert torch.equal(module_out[:, :, 0, 0], out)


def test_shift_sits_on_every_block_and_every_second_one_for_deep_layer3():
    net50 = ResNet2d(50, width=8)
    install_temporal_shift(net50, 8)
    assert all(isinstance(b.shift, TemporalShift) for layer in (net50.layer1, net50.layer4) for b in layer)
    net101 = ResNet2d(101, width=8)
    install_temporal_shift(net101, 8)
    assert [isinstance(b.shift, TemporalShift) for b in net101.layer3][:4] == [True, False, True, False]


def test_resnet2d_matches_torchvision_parameter_counts():
    # torchvision.models.resnet18 / resnet50 documentation: 11,689,512 and 25,557,032 parameters.
    assert sum(p.numel() for p in ResNet2d(18).parameters()) == 11_689_512
    assert sum(p.numel() for p in ResNet2d(50).parameters()) == 25_557_032
    net = ResNet2d(50, num_classes=7, width=8, in_channels=2)
    assert net.out_channels == 256
    x = torch.randn(2, 2, 64, 64)
    assert tuple(net.forward_maps(x).shape) == (2, 256, 2, 2)
    assert tuple(net(x).shape) == (2, 7)


def test_kernel_soft_argmax_golden_peak():
    # One correlation peak of 0.8 at offset (dy, dx) = (-3, +5) in the 15x15 window, zeros elsewhere:
    # temperature 100 makes the softmax one-hot up to e^-80, so displacement = (5/7, -3/7), confidence 0.8.
    corr = torch.zeros(1, 225, 2, 2)
    corr[0, (7 - 3) * 15 + (7 + 5), 0, 1] = 0.8
    disp, conf = kernel_soft_argmax(corr)
    torch.testing.assert_close(disp[0, :, 0, 1], torch.tensor([5 / 7, -3 / 7]))
    assert conf[0, 0, 0, 1].item() == pytest.approx(0.8)
    # Where all correlations are 0 the softmax is uniform over the window: zero displacement.
    torch.testing.assert_close(disp[0, :, 1, 1], torch.zeros(2), atol=1e-6, rtol=0)


def _identity_motion_squeeze():
    ms = MotionSqueeze(64).eval()
    with torch.no_grad():
        ms.reduce[0].weight.copy_(torch.eye(64).view(64, 64, 1, 1))
    return ms


def test_motion_squeeze_reads_a_known_shift_x_then_y():
    # Frame t+1 is frame t moved 2 pixels right (+x) and 1 up (-y): interior displacement (2/7, -1/7).
    torch.manual_seed(0)
    f0 = torch.rand(1, 64, 12, 12)
    f1 = torch.roll(f0, shifts=(-1, 2), dims=(2, 3))
    disp, conf = _identity_motion_squeeze().motion(torch.cat([f0, f1]), t=2)
    assert tuple(disp.shape) == (1, 1, 2, 12, 12) and tuple(conf.shape) == (1, 1, 1, 12, 12)
    inner = disp[0, 0, :, 2:-2, 3:-3]
    torch.testing.assert_close(inner[0], torch.full_like(inner[0], 2 / 7), atol=1e-4, rtol=0)
    torch.testing.assert_close(inner[1], torch.full_like(inner[1], -1 / 7), atol=1e-4, rtol=0)
    # L2-normalised identical vectors correlate to 1 (minus the 1e-6 inside the norm).
    torch.testing.assert_close(conf[0, 0, 0, 2:-2, 3:-3], torch.ones(8, 6), atol=1e-4, rtol=0)


def test_motion_squeeze_repeats_the_last_pair_for_the_last_frame():
    ms = _identity_motion_squeeze()
    seen = []
    ms.transform.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    x = torch.rand(3, 64, 6, 6)
    with torch.no_grad():
        ms(x, t=3)
    motion = seen[0]  # [T, 3, h, w]: (dx, dy, confidence) per frame
    assert tuple(motion.shape) == (3, 3, 6, 6)
    assert torch.equal(motion[2], motion[1]) and not torch.equal(motion[1], motion[0])


def test_msnet_motion_maps_shapes_and_units():
    torch.manual_seed(0)
    model = M.create_model("msnet_r50", num_classes=5, width=8)
    disp, conf = model.motion_maps(torch.randn(2, 3, 4, 64, 64))
    assert tuple(disp.shape) == (2, 3, 2, 8, 8) and tuple(conf.shape) == (2, 3, 1, 8, 8)
    assert disp.abs().max() <= 1.0 and (conf >= 0).all() and (conf <= 1 + 1e-5).all()


def test_corrnet_correlates_each_frame_with_the_previous_one():
    torch.manual_seed(0)
    layer = WeightedCorrelation(64, 3)
    x = torch.randn(1, 64, 3, 5, 5)
    with torch.no_grad():
        out = layer(x)
        w = layer.filter_weight
        first = weighted_correlation(x[:, :, :1], x[:, :, :1], w[:, :1], 32, 2)  # frame 0 with itself
        second = weighted_correlation(x[:, :, :1], x[:, :, 1:2], w[:, 1:2], 32, 2)  # frame 0 with frame 1
    assert tuple(out.shape) == (1, 7 * 7 * 32, 3, 5, 5)
    torch.testing.assert_close(out[:, :, :1], first)
    torch.testing.assert_close(out[:, :, 1:2], second)


def test_input_errors_are_one_line_usage_errors():
    model = M.create_model("corrnet_26", num_frames=8)
    with pytest.raises(UsageError, match=r"CorrNet was built for T=8 frames .* got T=4; build it with num_frames=4"):
        model(torch.zeros(1, 3, 4, 32, 32))
    with pytest.raises(UsageError, match=r"I3D expects 2 channels, got 3"):
        M.create_model("i3d_flow")(torch.zeros(1, 3, 8, 32, 32))
    with pytest.raises(UsageError, match=r"expects float \[B, C, T, H, W\], got shape \(3, 8, 32, 32\)"):
        M.create_model("tsm_r50", width=8)(torch.zeros(3, 8, 32, 32))


def test_cli_models_table_and_json():
    runner = CliRunner()
    result = runner.invoke(app, ["models", "tsm_r50", "msnet_r50"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    tsm = next(line for line in lines if line.startswith("tsm_r50"))
    assert "24.33M" in tsm and " 32.7 " in tsm and "8 segments x 224^2 (short side 256) RGB" in tsm and "33 GFLOPs (-0.9%)" in tsm
    assert "tsm_r50: mit-han-lab/temporal-shift-module" in result.output and "--weights takes a checkpoint of its main.py" in result.output
    result = runner.invoke(app, ["models", "i3d_rgb", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["name"] == "i3d_rgb" and row["feature_dim"] == 1024 and row["spec"]["num_frames"] == 64
    assert 12.0e6 < row["params"] < 12.8e6 and 100 < row["gflops"] < 120
    result = runner.invoke(app, ["models", "resnet"])
    assert result.exit_code == 2 and "unknown model 'resnet'" in result.output
