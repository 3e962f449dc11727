"""Feature extraction: preprocessing, clip placement and streaming, batching, and serial runs on real videos."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

import vfx
from test_features_support import make_flow_store, save_seeded_weights, tiny_params
from vfx.engine import RunOptions
from vfx.decode import read_frames
from vfx.errors import CheckpointError, UsageError
from vfx.features import ClipParams, FeatureParams, ModelChoice, SpatialParams, extract_features, resolve
from vfx.features.clips import Source, VideoPlan, plan_clips, stream_clips
from vfx.features.params import ClipPlanParams
from vfx.features.preprocess import ModelInput, ValueMap, crop_boxes, resize_flow
from vfx.features.runner import run_batched
from vfx.models.spec import InputSpec
from vfx.sources import load_items
from vfx.types import VideoItem

I3D_RGB = InputSpec(16, 224, 3, "dense", (-1.0, 1.0), (0.0,) * 3, (1.0,) * 3, 1024)
I3D_FLOW = InputSpec(16, 224, 2, "dense", (-1.0, 1.0), (0.0,) * 2, (1.0,) * 2, 1024)
TSM_RGB = InputSpec(8, 224, 3, "segments", (0.0, 1.0), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 2048)
IDENTITY = InputSpec(4, 8, 3, "dense", (0.0, 255.0), (0.0,) * 3, (1.0,) * 3, 3)


# ------------------------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize(
    "h, w, size, mode, expected",
    [
        (256, 340, 224, "center", [(16, 58, False)]),
        # three crops along the long side: centre first, then both ends
        (256, 340, 224, "three", [(16, 58, False), (16, 0, False), (16, 116, False)]),
        (340, 256, 224, "three", [(58, 16, False), (0, 16, False), (116, 16, False)]),
        (
            256, 340, 224, "ten",
            [(16, 58, False), (0, 0, False), (0, 116, False), (32, 0, False), (32, 116, False),
             (16, 58, True), (0, 0, True), (0, 116, True), (32, 0, True), (32, 116, True)],
        ),
    ],
)  # fmt: skip
def test_crop_boxes(h, w, size, mode, expected):
    assert crop_boxes(h, w, size, mode) == expected


def test_value_maps_match_each_models_convention():
    rgb = np.array([[[[0, 255, 51]]]], np.uint8)  # [T=1, H=1, W=1, C=3]
    # I3D: x / 255 * 2 - 1 (pytorch-i3d charades_dataset.py)
    np.testing.assert_allclose(ValueMap.for_model(I3D_RGB).apply(rgb)[0, 0, 0], [-1.0, 1.0, 51 / 255 * 2 - 1], atol=1e-6)
    # TSM / MSNet: x / 255, then ImageNet mean / std
    want = (np.array([0, 255, 51]) / 255.0 - np.array(TSM_RGB.mean)) / np.array(TSM_RGB.std)
    np.testing.assert_allclose(ValueMap.for_model(TSM_RGB).apply(rgb)[0, 0, 0], want, atol=1e-5)
    # I3D flow: clipped to +-20 px then / 20
    flow = np.array([[[[-35.0, 5.0]]]], np.float32)
    np.testing.assert_allclose(ValueMap.for_model(I3D_FLOW, 20.0).apply(flow)[0, 0, 0], [-1.0, 0.25], atol=1e-6)


def test_model_input_views_and_mirrored_flow():
    flow = np.zeros((2, 10, 12, 2), np.float32)
    flow[..., 0], flow[..., 1] = 4.0, -2.0
    views = ModelInput(ValueMap.for_model(I3D_FLOW, 20.0), "ten", 8, flow=True)(flow)
    assert views.shape == (2, 10, 2, 8, 8)  # [T, V, C, h, w]
    np.testing.assert_allclose(views[:, :5, 0], 0.2, atol=1e-6)  # 4 / 20
    np.testing.assert_allclose(views[:, 5:, 0], -0.2, atol=1e-6)  # mirrored views move the other way
    np.testing.assert_allclose(views[:, :, 1], -0.1, atol=1e-6)  # y is unchanged by a horizontal mirror

    frames = np.arange(2 * 10 * 12 * 3, dtype=np.float64).reshape(2, 10, 12, 3) % 256
    rgb = ModelInput(ValueMap.for_model(IDENTITY), "ten", 8, flow=False)(frames.astype(np.uint8))
    np.testing.assert_array_equal(rgb[:, 0], frames[:, 1:9, 2:10].transpose(0, 3, 1, 2))  # centre crop
    np.testing.assert_array_equal(rgb[:, 6], frames[:, :8, :8][:, :, ::-1].transpose(0, 3, 1, 2))  # top-left, mirrored


def test_resized_flow_vectors_scale_with_the_image():
    flow = np.zeros((1, 20, 30, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3.0, -1.0
    out = resize_flow(flow, short_side=40)  # 2x
    assert out.shape == (1, 40, 60, 2)
    np.testing.assert_allclose(out[..., 0], 6.0, atol=1e-5)
    np.testing.assert_allclose(out[..., 1], -2.0, atol=1e-5)


# ---------------------------------------------------------------------------------------- clips and streams


class ArraySource(Source):
    """Frames whose every pixel is the source frame number; counts how often each frame is read."""

    def __init__(self, grid, modality="rgb", size=8):
        super().__init__(short_side=size, interpolation="linear")
        self.modality = modality
        self.grid = np.asarray(grid, np.int64)
        self.timestamps = self.grid / 10.0
        self.attrs = {"fps": 10.0}
        self.size = size
        self.reads: list[int] = []

    def _read(self, rows):
        self.reads.extend(self.grid[rows].tolist())
        channels = 2 if self.modality == "flow" else 3
        frames = np.empty((len(rows), self.size, self.size, channels), np.float32 if channels == 2 else np.uint8)
        frames[:] = self.grid[rows][:, None, None, None] % 256
        return frames


@pytest.mark.parametrize(
    "num_frames, clips, expected_first, padded",
    [
        (250, ClipPlanParams("dense", 16, 4, None, 1), [0, 4, 8], False),  # THUMOS14 I3D: 16 frames, stride 4
        (250, ClipPlanParams("uniform", 16, None, 3, 1), [0, 117, 234], False),
        (250, ClipPlanParams("segments", 8, None, None, 1), [15], False),  # TSN centre of 8 segments
        (5, ClipPlanParams("dense", 8, 4, None, 1), [0], True),  # short video: one padded clip
    ],
)
def test_plan_clips(num_frames, clips, expected_first, padded):
    plan = plan_clips([ArraySource(np.arange(num_frames))], clips)
    assert plan.clip_frames()[: len(expected_first), 0].tolist() == expected_first
    assert plan.padded is padded and plan.attrs["padded"] is padded
    if clips.mode == "dense" and not padded:
        assert plan.num_clips == (num_frames - clips.clip_len) // clips.stride + 1
        np.testing.assert_array_equal(plan.clip_frames()[:, 1] - plan.clip_frames()[:, 0], clips.clip_len - 1)
    if clips.mode == "segments":
        assert plan.positions.tolist() == [[15, 46, 78, 109, 140, 171, 203, 234]]  # int(31.25 * (k + 0.5))
    if padded:
        assert plan.positions.tolist() == [[0, 1, 2, 3, 4, 4, 4, 4]] and plan.attrs["padded_frames"] == 3
    # clip times: first frame's start to the last frame's end (+ one frame at 10 fps)
    np.testing.assert_allclose(plan.clip_timestamps()[0], [plan.clip_frames()[0, 0] / 10, plan.clip_frames()[0, 1] / 10 + 0.1])


def test_two_sources_are_aligned_on_the_frames_both_have():
    rgb = ArraySource(np.arange(0, 20))
    flow = ArraySource(np.arange(0, 19), modality="flow")  # pairs (i, i+1): no flow starts at the last frame
    plan = plan_clips([rgb, flow], ClipPlanParams("dense", 8, 4, None, 1))
    assert plan.clip_frames().tolist() == [[0, 7], [4, 11], [8, 15]]  # needs frame 15's flow, so not [12, 19]
    inputs = [(0, ModelInput(ValueMap.for_model(IDENTITY), "center", 8, False)),
              (1, ModelInput(ValueMap.for_model(InputSpec(4, 8, 2, "dense", (0.0, 40.0), (0.0,) * 2, (1.0,) * 2, 2), 20.0), "center", 8, True))]  # fmt: skip
    for k, (rgb_clip, flow_clip) in stream_clips(plan, [rgb, flow], inputs, window=5):
        first = 4 * k
        np.testing.assert_array_equal(rgb_clip[0, 0, :, 0, 0], np.arange(first, first + 8))
        # flow value f maps to f + 20 with this spec; the flow of frame f is read for clip frame f
        np.testing.assert_array_equal(flow_clip[0, 0, :, 0, 0], np.minimum(np.arange(first, first + 8), 20) + 20)


def test_stream_reads_each_frame_once_and_keeps_memory_bounded():
    source = ArraySource(np.arange(3000))
    plan = plan_clips([source], ClipPlanParams("dense", 16, 4, None, 1))
    inputs = [(0, ModelInput(ValueMap.for_model(IDENTITY), "center", 8, False))]
    seen = 0
    for k, (clip,) in stream_clips(plan, [source], inputs, window=32):
        assert clip.shape == (1, 3, 16, 8, 8)
        np.testing.assert_array_equal(clip[0, 0, :, 0, 0], np.arange(4 * k, 4 * k + 16) % 256)
        # the stream never runs more than one window ahead of the clip it yields
        assert max(source.reads) < 4 * k + 16 + 32
        seen += 1
    assert seen == plan.num_clips == (3000 - 16) // 4 + 1
    assert sorted(source.reads) == list(range(3000))  # each frame decoded once although clips overlap 4x


def test_batches_span_videos_and_results_come_back_in_order():
    """5 videos with 1..5 clips (the third fails to open), batches of 5: clips of several videos share a pass."""
    items = [VideoItem(f"v{n}", f"/videos/v{n}.mp4") for n in range(5)]
    batch_sizes = []

    def open_video(item):
        n = int(item.video_id[1:])
        if n == 2:
            raise vfx.errors.VideoError(f"{item.path}: cannot be decoded")
        plan = VideoPlan(np.zeros((n + 1, 1), np.int64), np.arange(1), [np.arange(1)], None, False)
        clips = ([np.full((1, 1), 10 * n + k, np.float32)] for k in range(n + 1))
        return plan, clips, lambda: None

    def infer(batches):
        batch_sizes.append(len(batches[0]))
        return {"features": batches[0].reshape(len(batches[0]), 1)}

    def make_output(item, plan, stream):
        return list(stream)

    results = list(run_batched(items, open_video, infer, 5, 3, make_output))
    assert [item.video_id for item, _ in results] == ["v0", "v1", "v2", "v3", "v4"]
    assert isinstance(results[2][1], vfx.errors.VideoError)
    values = {item.video_id: np.concatenate([c["features"] for c in out]).ravel().tolist() for item, out in results if isinstance(out, list)}
    assert values == {"v0": [0], "v1": [10, 11], "v3": [30, 31, 32, 33], "v4": [40, 41, 42, 43, 44]}
    assert batch_sizes == [5, 5, 2]  # 1 + 2 + 4 + 5 clips, in batches of 5 across videos


# ----------------------------------------------------------------------------------------- parameters


def test_defaults_come_from_the_models_input_spec():
    i3d = resolve(FeatureParams(models=(ModelChoice.of("i3d_rgb"),)))
    assert i3d.clips == ClipPlanParams("dense", 64, 64, None, 1)  # video_features i3d: 64-frame stacks, step 64
    assert i3d.models[0].crop_size == 224 and i3d.params.spatial.short_side == 256
    tsm = resolve(FeatureParams(models=(ModelChoice.of("tsm_r50"),)))
    assert tsm.clips == ClipPlanParams("segments", 8, None, None, 1)
    thumos = resolve(FeatureParams(models=(ModelChoice.of("i3d_rgb"),), clips=ClipParams(clip_len=16, stride=4)))
    assert thumos.clips == ClipPlanParams("dense", 16, 4, None, 1)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: FeatureParams(models=(ModelChoice.of("i3d_rgbx"),)), "unknown model 'i3d_rgbx'; known models: corrnet_101"),
        (lambda: FeatureParams(models=(ModelChoice.of("i3d_flow"),)), "i3d_flow takes optical flow (2 channels), not RGB: give a flow store with --from-flow"),
        (lambda: FeatureParams(models=(ModelChoice.of("i3d_rgb"),), clips=ClipParams(stride=4, num_clips=3)), "--stride and --num-clips cannot be combined"),
        (lambda: FeatureParams(models=(ModelChoice.of("i3d_rgb"),), precision="fp8"), "--precision must be one of fp32, fp16, bf16"),
        (lambda: FeatureParams(models=(ModelChoice.of("i3d_rgb"),), spatial=SpatialParams(short_side=200)), "i3d_rgb takes 224x224 crops, larger than --short-side 200"),
        (lambda: FeatureParams(models=(ModelChoice.of("i3d_rgb", "/no/such.pt"),)), "/no/such.pt: weights file not found (for --model i3d_rgb)"),
        (lambda: FeatureParams(models=(ModelChoice.of("i3d_rgb"),), motion_maps=True), "--motion-maps needs a model with motion maps"),
    ],
)  # fmt: skip
def test_bad_parameters_have_clear_messages(make, message):
    with pytest.raises(UsageError) as info:
        resolve(make())
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_weights_that_do_not_match_list_the_keys(tmp_path):
    path = save_seeded_weights("tsm_r50", tmp_path / "tsm.pt", num_classes=5, width=8)
    with pytest.raises(CheckpointError) as info:
        resolve(tiny_params(ModelChoice.of("msnet_r50", path, num_classes=5, width=8)))
    text = str(info.value)
    assert text.startswith(f"{path}: does not match MSNet; missing 45: motion.reduce.0.weight")
    assert "\n" not in text


# ------------------------------------------------------------------------------------ runs on real videos


@pytest.fixture(scope="module")
def carphone(samples):
    return load_items(samples["carphone_pristine"])  # 120 frames, 176x144, 29.97 fps


@pytest.fixture(scope="module")
def i3d_weights(tmp_path_factory):
    return save_seeded_weights("i3d_rgb", tmp_path_factory.mktemp("w") / "i3d_rgb.pt", seed=3)


@pytest.fixture(scope="module")
def i3d_store(carphone, i3d_weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("features") / "i3d"
    params = tiny_params(ModelChoice.of("i3d_rgb", i3d_weights))  # 8-frame clips every 40 frames: 3 clips
    summary = extract_features(carphone, path, params, RunOptions(engine="serial", progress=False))
    assert summary.ok and summary.done == 1
    return path


def i3d_values(x):
    return x / 255.0 * 2 - 1  # pytorch-i3d: [0, 255] -> [-1, 1]


def expected_features(path, clip_first, weights, name="i3d_rgb", to_values=i3d_values, clip_len=8, short_side=40,
                      crop=32, **model_kwargs):
    """What the stored feature of one clip must be, computed independently: decode, resize, crop, map values."""
    from vfx.models import create_model

    frames = read_frames(str(path), np.arange(clip_first, clip_first + clip_len))
    h, w = frames.shape[1:3]
    new_w, new_h = (round(w * short_side / h / 2) * 2, short_side) if w >= h else (short_side, round(h * short_side / w / 2) * 2)
    resized = np.stack([cv2.resize(f, (new_w, new_h), interpolation=cv2.INTER_LINEAR) for f in frames])
    top, left = (new_h - crop) // 2, (new_w - crop) // 2
    x = to_values(resized[:, top : top + crop, left : left + crop].astype(np.float32)).astype(np.float32)
    x = torch.from_numpy(x).permute(3, 0, 1, 2)[None]
    model = create_model(name, weights=weights, **model_kwargs)
    with torch.inference_mode():
        return model.forward_features(x)[0].numpy()


def test_i3d_store_shapes_alignment_and_values(i3d_store, carphone, i3d_weights):
    store = vfx.open_store(i3d_store)
    vid = carphone[0].video_id
    assert store.kind == "features" and store.video_ids() == [vid]
    feats = store.read_features(vid)
    assert feats.shape == (3, 1024) and feats.dtype == np.float32
    # clips of 8 frames starting every 40 source frames, as asked
    assert store.clip_frames(vid).tolist() == [[0, 7], [40, 47], [80, 87]]
    assert store.clip_frames(vid).dtype == np.int32
    fps = 30000 / 1001
    np.testing.assert_allclose(store.group(vid)["clip_timestamps"][()], [[0, 8 / fps], [40 / fps, 48 / fps], [80 / fps, 88 / fps]], atol=2e-3)
    attrs = store.attrs(vid)
    assert attrs["models"] == ["i3d_rgb"] and attrs["feature_dims"] == [1024] and attrs["padded"] is False
    assert attrs["device"] == "cpu" and attrs["views"] == 1
    np.testing.assert_allclose(feats[1], expected_features(carphone[0].path, 40, i3d_weights), rtol=1e-4, atol=1e-5)


def test_corrnet_features_end_to_end(carphone, tmp_path):
    """CorrNet (R(2+1)D + correlation) from a checkpoint: its own value range, 2048-d, clip by clip."""
    weights = save_seeded_weights("corrnet_26", tmp_path / "corrnet.pt", seed=2, num_frames=8)
    params = tiny_params(ModelChoice.of("corrnet_26", weights, num_frames=8))
    summary = extract_features(carphone, tmp_path / "store", params, RunOptions(engine="serial", progress=False))
    assert summary.ok, summary.failures
    store = vfx.open_store(tmp_path / "store")
    vid = carphone[0].video_id
    feats = store.read_features(vid)
    assert feats.shape == (3, 2048) and store.clip_frames(vid).tolist() == [[0, 7], [40, 47], [80, 87]]
    assert store.params["models"][0]["value_mapping"].endswith("mean=[0.45, 0.45, 0.45] std=[0.225, 0.225, 0.225]")

    def corrnet_values(x):
        return (x / 255.0 - 0.45) / 0.225

    want = expected_features(carphone[0].path, 80, weights, "corrnet_26", corrnet_values, num_frames=8)
    np.testing.assert_allclose(feats[2], want, rtol=1e-4, atol=1e-5)


def test_store_records_provenance(i3d_store, i3d_weights):
    import hashlib

    manifest = json.loads((i3d_store / "vfx-store.json").read_text())
    p = manifest["params"]
    model = p["models"][0]
    assert model["name"] == "i3d_rgb" and model["weights"] == str(i3d_weights)
    assert model["weights_sha256"] == hashlib.sha256(i3d_weights.read_bytes()).hexdigest()
    assert model["value_mapping"] == "RGB [0, 255] mapped linearly to [-1, 1]"
    assert p["clips"] == {"mode": "dense", "clip_len": 8, "stride": 40, "num_clips": None, "frame_step": 1}
    assert p["spatial"]["short_side"] == 40 and p["spatial"]["crop_size"] == 32 and p["spatial"]["crop"] == "center"
    assert p["versions"] == {"vfx": vfx.__version__, "torch": torch.__version__}
    assert p["feature_dim"] == 1024 and p["precision"] == "fp32"


def test_two_runs_give_identical_features(i3d_store, carphone, i3d_weights, tmp_path):
    again = tmp_path / "again"
    extract_features(carphone, again, tiny_params(ModelChoice.of("i3d_rgb", i3d_weights)), RunOptions(engine="serial", progress=False))
    vid = carphone[0].video_id
    first, second = vfx.open_store(i3d_store), vfx.open_store(again)
    np.testing.assert_array_equal(first.read_features(vid), second.read_features(vid))
    np.testing.assert_array_equal(first.clip_frames(vid), second.clip_frames(vid))


def test_random_init_is_loud_and_recorded(carphone, tmp_path):
    with pytest.warns(vfx.features.RandomWeightsWarning, match="i3d_rgb run with RANDOM weights"):
        extract_features(carphone, tmp_path / "r", tiny_params(ModelChoice.of("i3d_rgb"), clips=ClipParams(clip_len=8, num_clips=1)), RunOptions(engine="serial", progress=False))
    manifest = json.loads((tmp_path / "r" / "vfx-store.json").read_text())
    assert manifest["params"]["models"][0]["weights_sha256"] == "random-init"
    assert manifest["params"]["models"][0]["init_seed"] == 0


def test_two_stream_i3d_concatenates_aligned_clips(tmp_path, tiny_dataset):
    items = load_items(tiny_dataset)[:2]  # 20 and 22 frames of 64x48
    flow_store = make_flow_store(items, tmp_path / "flow", dx=3.0, dy=-1.0)
    params = tiny_params(
        ModelChoice.of("i3d_rgb"), ModelChoice.of("i3d_flow"), from_flow=str(flow_store),
        clips=ClipParams(clip_len=8, stride=6), spatial=SpatialParams(short_side=32, crop_size=32),
    )  # fmt: skip
    with pytest.warns(vfx.features.RandomWeightsWarning):
        summary = extract_features(items, tmp_path / "two", params, RunOptions(engine="serial", progress=False))
    assert summary.ok
    store = vfx.open_store(tmp_path / "two")
    for item, frames in zip(items, (20, 22)):
        vid = item.video_id
        rgb, flow, both = (store.group(vid)[n][()] for n in ("features_i3d_rgb", "features_i3d_flow", "features"))
        # flow exists for frames 0..T-2, so clips fit in T-1 frames: [0, 7], [6, 13], (and [12, 19] with 22 frames)
        n = (frames - 1 - 8) // 6 + 1
        assert store.clip_frames(vid).tolist() == [[6 * k, 6 * k + 7] for k in range(n)]
        assert both.shape == (n, 2048) and rgb.shape == flow.shape == (n, 1024)
        np.testing.assert_array_equal(both, np.concatenate([rgb, flow], axis=1))  # rgb first, as given
        assert store.attrs(vid)["models"] == ["i3d_rgb", "i3d_flow"] and store.attrs(vid)["feature_dims"] == [1024, 1024]
    p = json.loads((tmp_path / "two" / "vfx-store.json").read_text())["params"]
    assert [m["name"] for m in p["models"]] == ["i3d_rgb", "i3d_flow"] and p["feature_dim"] == 2048
    assert p["models"][1]["value_mapping"] == "flow clipped to +-20 px, mapped linearly to [-1, 1]"
    # the flow stream's features do not depend on the RGB stream: same as a flow-only run
    alone = tiny_params(ModelChoice.of("i3d_flow"), from_flow=str(flow_store), clips=ClipParams(clip_len=8, stride=6),
                        spatial=SpatialParams(short_side=32, crop_size=32))  # fmt: skip
    with pytest.warns(vfx.features.RandomWeightsWarning):
        extract_features(items, tmp_path / "flow-only", alone, RunOptions(engine="serial", progress=False))
    only = vfx.open_store(tmp_path / "flow-only")
    np.testing.assert_allclose(only.read_features(items[0].video_id), store.group(items[0].video_id)["features_i3d_flow"][()], rtol=1e-5, atol=1e-6)


def test_msnet_segments_spatial_maps_motion_maps_and_ten_crop(tmp_path, carphone):
    params = tiny_params(
        ModelChoice.of("msnet_r50", num_classes=5, width=8), clips=ClipParams(segments=4),
        spatial=SpatialParams(short_side=64, crop_size=64, crop="ten", crop_reduce="keep"),
        keep_spatial=True, motion_maps=True,
    )  # fmt: skip
    with pytest.warns(vfx.features.RandomWeightsWarning):
        assert extract_features(carphone, tmp_path / "ms", params, RunOptions(engine="serial", progress=False)).ok
    store = vfx.open_store(tmp_path / "ms")
    g = store.group(carphone[0].video_id)
    assert store.clip_frames(carphone[0].video_id).tolist() == [[15, 105]]  # centres of 4 segments of 120 frames
    assert g["features"].shape == (1, 256)
    assert g["crop_features"].shape == (1, 10, 256)
    np.testing.assert_allclose(g["features"][()], g["crop_features"][()].mean(axis=1), rtol=1e-5, atol=1e-6)
    assert g["spatial"].shape == (1, 256, 4, 2, 2)  # [clips, D, T, 64/32, 64/32], centre view
    assert g["displacement"].shape == (1, 3, 2, 8, 8)  # T-1 frame pairs on the layer2 grid (64/8)
    assert g["confidence"].shape == (1, 3, 1, 8, 8)
    assert np.all(np.abs(g["displacement"][()]) <= 1.0)  # in units of the 7-pixel search radius


def test_short_video_is_padded_and_says_so(tmp_path, tiny_dataset):
    items = load_items(tiny_dataset)[:1]  # 20 frames
    params = tiny_params(ModelChoice.of("tsm_r50", num_classes=5, width=8), clips=ClipParams(clip_len=24, stride=4))
    with pytest.warns(vfx.features.RandomWeightsWarning):
        extract_features(items, tmp_path / "s", params, RunOptions(engine="serial", progress=False))
    store = vfx.open_store(tmp_path / "s")
    vid = items[0].video_id
    assert store.clip_frames(vid).tolist() == [[0, 19]]
    assert store.attrs(vid)["padded"] is True and store.attrs(vid)["padded_frames"] == 4


def test_a_broken_video_fails_alone(tmp_path, tiny_dataset):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "good.mkv").write_bytes((tiny_dataset / "left" / "clip 0.mkv").read_bytes())
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    items = load_items(folder)
    params = tiny_params(ModelChoice.of("tsm_r50", num_classes=5, width=8), clips=ClipParams(segments=2))
    with pytest.warns(vfx.features.RandomWeightsWarning):
        summary = extract_features(items, tmp_path / "out", params, RunOptions(engine="serial", progress=False))
    assert (summary.done, summary.failed) == (1, 1)
    assert list(summary.failures) == ["broken"] and "broken.mp4" in summary.failures["broken"]
    assert vfx.open_store(tmp_path / "out").read_features("good").shape == (1, 256)


def test_from_frames_store_gives_the_same_clips(tmp_path, tiny_dataset):
    from vfx.frames import FrameParams, FramesStage
    from vfx.image import Resize
    from vfx.engine import run_stage

    items = load_items(tiny_dataset)[:1]
    run_stage(FramesStage(FrameParams(resize=Resize(), format="raw")), items, tmp_path / "frames", RunOptions(engine="serial", progress=False))
    kwargs = dict(clips=ClipParams(clip_len=4, stride=8), spatial=SpatialParams(short_side=48, crop_size=32))
    model = ModelChoice.of("tsm_r50", num_classes=5, width=8)
    with pytest.warns(vfx.features.RandomWeightsWarning):
        extract_features(items, tmp_path / "a", tiny_params(model, **kwargs), RunOptions(engine="serial", progress=False))
        extract_features(items, tmp_path / "b", tiny_params(model, from_frames=str(tmp_path / "frames"), **kwargs), RunOptions(engine="serial", progress=False))
    vid = items[0].video_id
    a, b = vfx.open_store(tmp_path / "a"), vfx.open_store(tmp_path / "b")
    np.testing.assert_array_equal(a.clip_frames(vid), b.clip_frames(vid))
    np.testing.assert_array_equal(a.read_features(vid), b.read_features(vid))  # raw frames are lossless


def test_precision_bf16_is_close_to_fp32(tmp_path, tiny_dataset):
    items = load_items(tiny_dataset)[:1]
    model = ModelChoice.of("tsm_r50", num_classes=5, width=8)
    out = {}
    for precision in ("fp32", "bf16"):
        params = tiny_params(model, clips=ClipParams(segments=4), precision=precision, feature_dtype="float16")
        with pytest.warns(vfx.features.RandomWeightsWarning):
            extract_features(items, tmp_path / precision, params, RunOptions(engine="serial", progress=False))
        out[precision] = vfx.open_store(tmp_path / precision).read_features(items[0].video_id)
    assert out["fp32"].dtype == np.float16
    assert not np.array_equal(out["fp32"], out["bf16"])
    np.testing.assert_allclose(out["bf16"], out["fp32"], rtol=0.1, atol=0.05 * np.abs(out["fp32"]).max())
    # Where the CPU lacks bf16 arithmetic the store says so (and the driver logged it before the run).
    from vfx.features.runner import cpu_has_native_bf16

    notes = {p: vfx.open_store(tmp_path / p).attrs(items[0].video_id).get("device_note") for p in out}
    assert notes["fp32"] is None
    assert (notes["bf16"] is None) == cpu_has_native_bf16()
    if notes["bf16"] is not None:
        assert "no native bf16 arithmetic" in notes["bf16"] and "slower than fp32" in notes["bf16"]


def test_precision_note_names_the_missing_instructions(monkeypatch):
    from vfx.features import runner

    monkeypatch.setattr(runner, "cpu_has_native_bf16", lambda: False)
    assert "avx512_bf16" in runner.precision_note("bf16", "cpu")
    assert runner.precision_note("bf16", "cuda") is None and runner.precision_note("fp32", "cpu") is None
    monkeypatch.setattr(runner, "cpu_has_native_bf16", lambda: True)
    assert runner.precision_note("bf16", "cpu") is None
    with runner.autocast("bf16", "cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with runner.autocast("fp32", "cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_gpu_requested_without_one_is_refused_in_process(tmp_path, carphone):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    params = tiny_params(ModelChoice.of("i3d_rgb"), gpus_per_worker=1.0)
    with pytest.raises(UsageError, match="--gpus-per-worker 1: torch sees no CUDA GPU on this machine"):
        extract_features(carphone, tmp_path / "g", params, RunOptions(engine="serial", progress=False))
