"""Fusion functions, temporal fusion and the two-stream model: values, shapes, initialisations, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vfx.errors import CheckpointError, UsageError
from vfx.models.resnet import ResNet2d
from vfx.train.fusion import FUSIONS, TEMPORAL_FUSIONS, SpatialFusion, TemporalFusion, bilinear_pool, scores
from vfx.train.model import ModelConfig, TwoStreamNet, count_parameters, cross_modality_conv1, load_rgb_weights


@pytest.fixture
def maps():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 6, 3, 2, generator=g), torch.randn(4, 6, 3, 2, generator=g)


def test_elementwise_fusions(maps):
    a, b = maps
    assert torch.equal(SpatialFusion("sum", 6)(a, b), a + b)
    assert torch.equal(SpatialFusion("max", 6)(a, b), torch.maximum(a, b))
    cat = SpatialFusion("concat", 6)
    assert cat.out_channels == 12 and torch.equal(cat(a, b), torch.cat([a, b], 1))


def test_conv_fusion_starts_as_the_sum_then_relu(maps):
    a, b = maps
    conv = SpatialFusion("conv", 6)
    assert conv.out_channels == 6
    torch.testing.assert_close(conv(a, b), F.relu(a + b))
    assert conv.conv.weight.shape == (6, 12, 1, 1)


def test_bilinear_fusion_matches_a_loop(maps):
    a, b = maps
    out = SpatialFusion("bilinear", 6)(a, b)
    assert out.shape == (4, 36, 1, 1)
    n = 1
    y = torch.zeros(6, 6)
    for i in range(3):
        for j in range(2):
            y += torch.outer(a[n, :, i, j], b[n, :, i, j])
    y = (y / 6).flatten()
    y = torch.sign(y) * torch.sqrt(y.abs())
    torch.testing.assert_close(out[n, :, 0, 0], y / y.norm(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.flatten(1).norm(dim=1), torch.ones(4))


def test_bilinear_gradient_is_finite_for_zero_maps():
    a = torch.zeros(2, 3, 2, 2, requires_grad=True)
    b = torch.relu(torch.randn(2, 3, 2, 2))
    bilinear_pool(a, b).sum().backward()
    assert torch.isfinite(a.grad).all()


def test_unequal_maps_are_refused():
    with pytest.raises(UsageError, match="different shapes"):
        SpatialFusion("sum", 4)(torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 3, 3))


def test_conv3d_fusion_starts_as_a_gaussian_smoothed_identity():
    # On an input constant in space and time the normalised Gaussian sums to 1: interior output = input.
    tf = TemporalFusion("conv3d", 5, 3, num_segments=4)
    x = torch.arange(1.0, 6.0)[None, :, None, None, None].expand(1, 5, 4, 5, 5)
    y = F.relu(tf.conv3d(x))
    torch.testing.assert_close(y[0, :, 1:-1, 1:-1, 1:-1].mean(dim=(1, 2, 3)), torch.arange(1.0, 6.0))
    # Concatenated input: the release's 0.25 (rgb) / 0.75 (flow) weights.
    tf2 = TemporalFusion("conv3d", 10, 3, num_segments=4, conv3d_channels=5)
    x2 = torch.cat([torch.full((1, 5, 4, 5, 5), 4.0), torch.full((1, 5, 4, 5, 5), 8.0)], 1)
    torch.testing.assert_close(tf2.conv3d(x2)[0, :, 2, 2, 2], torch.full((5,), 0.25 * 4 + 0.75 * 8))


def test_pool3d_takes_the_max_over_all_segments():
    tf = TemporalFusion("pool3d", 2, 3, num_segments=3)
    x = torch.zeros(1, 2, 3, 2, 2)
    x[0, 0, 1, 0, 1] = 5.0
    assert tf.features(x).tolist() == [[5.0, 0.0]]
    avg = TemporalFusion("avg", 2, 3, num_segments=3)
    torch.testing.assert_close(avg.features(x), torch.tensor([[5.0 / 12, 0.0]]))


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("temporal", TEMPORAL_FUSIONS)
def test_every_variant_gives_class_probabilities(fusion, temporal):
    cfg = ModelConfig(fusion=fusion, temporal_fusion=temporal, width=4, num_segments=3, flow_length=2)
    if fusion == "bilinear" and temporal == "conv3d":
        with pytest.raises(UsageError, match="bilinear"):
            TwoStreamNet(cfg, 5)
        return
    model = TwoStreamNet(cfg, 5).eval()
    x = {"rgb": torch.randn(2, 3, 3, 64, 64), "flow": torch.randn(2, 3, 4, 64, 64)}
    logits = model(x)
    assert len(logits) == (2 if fusion == "late" else 1)
    assert all(z.shape == (2, 5) for z in logits)
    torch.testing.assert_close(scores(logits).sum(1), torch.ones(2))


def test_late_fusion_averages_the_softmax_scores():
    za, zb = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    torch.testing.assert_close(scores([za, zb]), (F.softmax(za, 1) + F.softmax(zb, 1)) / 2)


def test_single_stream_models_have_one_backbone():
    rgb = TwoStreamNet(ModelConfig(streams=("rgb",), width=4), 3)
    flow = TwoStreamNet(ModelConfig(streams=("flow",), width=4, flow_length=3), 3)
    assert list(rgb.backbones) == ["rgb"] and list(flow.backbones) == ["flow"]
    assert flow.backbones["flow"].conv1.weight.shape[1] == 6
    assert count_parameters(rgb) < count_parameters(TwoStreamNet(ModelConfig(width=4), 3))


def test_resnet50_width_option_builds_small():
    model = TwoStreamNet(ModelConfig(arch="resnet50", width=4, fusion="sum", flow_length=1), 2)
    out = model({"rgb": torch.randn(1, 3, 3, 32, 32), "flow": torch.randn(1, 3, 2, 32, 32)})
    assert out[0].shape == (1, 2)


def test_cross_modality_initialisation_from_rgb_weights(tmp_path):
    rgb = ResNet2d(18, num_classes=7, width=4)
    path = tmp_path / "rgb.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in rgb.state_dict().items()}}, path)
    model = TwoStreamNet(ModelConfig(width=4, flow_length=3), 5)
    load_rgb_weights(model, path)
    w = rgb.conv1.weight
    assert torch.equal(model.backbones["rgb"].conv1.weight, w)
    flow_w = model.backbones["flow"].conv1.weight
    assert flow_w.shape == (4, 6, 7, 7)
    torch.testing.assert_close(flow_w, w.mean(1, keepdim=True).repeat(1, 6, 1, 1))
    assert torch.equal(model.backbones["flow"].layer3[0].conv1.weight, rgb.layer3[0].conv1.weight)
    assert torch.equal(cross_modality_conv1(w, 2)[:, 0], cross_modality_conv1(w, 2)[:, 1])


def test_rgb_weights_of_another_width_are_a_checkpoint_error():
    model = TwoStreamNet(ModelConfig(width=4), 5)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_rgb_weights(model, ResNet2d(18, width=8).state_dict())


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"fusion": "avg"}, "unknown --fusion"),
        ({"temporal_fusion": "lstm"}, "unknown --temporal-fusion"),
        ({"arch": "vgg16"}, "unknown --arch"),
        ({"streams": ("rgb", "depth")}, "--streams"),
    ],
)
def test_bad_model_options_are_usage_errors(kw, message):
    with pytest.raises(UsageError, match=message):
        ModelConfig(**kw)
