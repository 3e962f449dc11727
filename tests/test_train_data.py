"""Datasets over real stores: TSN sampling, RGB/flow alignment by source frame number, flips, lazy files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from test_train_support import flow_store, frames_store, make_videos
from vfx.errors import UsageError
from vfx.train.data import (
    DataConfig,
    build_video_datasets,
    center_crop_box,
    sample_crop_box,
    segment_offsets,
    split_ids,
)

SIZE = 32


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Frames every 2nd frame; flow from a store with every frame: the two differ in stored positions."""
    root = tmp_path_factory.mktemp("data")
    videos = make_videos(root / "videos", videos_per_class=3, frames=14, size=SIZE, classes=("fall", "rise"))
    every2 = frames_store(videos, root / "frames2", size=SIZE, extra=("--every", "2"))
    full = frames_store(videos, root / "frames", size=SIZE)
    return {"frames2": every2, "frames": full, "flow": flow_store(full, root / "flow")}


@pytest.mark.parametrize(
    "n, k, expected",
    [
        (10, 3, [1, 5, 8]),  # tick 3.33: int(1.67), int(5), int(8.33)
        (9, 3, [1, 4, 7]),
        (3, 3, [0, 1, 2]),
        (2, 3, [0, 1, 1]),  # fewer candidates than segments: candidates repeat
        (1, 4, [0, 0, 0, 0]),
    ],
)
def test_segment_offsets_test_mode_is_tsn_centre(n, k, expected):
    assert segment_offsets(n, k, None).tolist() == expected


@pytest.mark.parametrize("n, k", [(10, 3), (30, 5), (7, 7), (4, 2)])
def test_segment_offsets_train_mode_draws_one_frame_inside_each_segment(n, k):
    average = n // k
    seen = set()
    for seed in range(50):
        offsets = segment_offsets(n, k, np.random.default_rng(seed))
        for i, o in enumerate(offsets):
            assert i * average <= o < (i + 1) * average
        seen.add(tuple(offsets))
    assert len(seen) > 1 or average == 1


def test_train_mode_with_fewer_candidates_than_segments_spreads_them():
    assert segment_offsets(2, 4, np.random.default_rng(0)).tolist() == [0, 0, 1, 1]


def test_crop_boxes_follow_tsn_scales_and_fixed_positions():
    rng = np.random.default_rng(0)
    sides = set()
    for _ in range(200):
        x0, y0, w, h = sample_crop_box(rng, 64, 64, 56)
        assert 0 <= x0 and x0 + w <= 1 + 1e-9 and 0 <= y0 and y0 + h <= 1 + 1e-9
        sides.add((round(w * 64), round(h * 64)))
    # 64 * (1, .875, .75, .66) = 64, 56, 48, 42 with at most one step of aspect distortion.
    assert sides <= {(a, b) for a in (64, 56, 48, 42) for b in (64, 56, 48, 42)
                     if abs([64, 56, 48, 42].index(a) - [64, 56, 48, 42].index(b)) <= 1}
    assert (64, 64) in sides and (42, 48) in sides
    # Test view: short side scaled to 56 * 256/224 = 64, centre 56x56.
    assert center_crop_box(64, 64, 56) == pytest.approx((0.0625, 0.0625, 0.875, 0.875))


def test_rgb_frame_and_flow_stack_align_by_source_frame_number(stores):
    cfg = DataConfig(num_segments=2, flow_length=3, crop_size=SIZE, val_fraction=0.34)
    ds = build_video_datasets(stores["frames2"], stores["flow"], ("rgb", "flow"), cfg)
    val = ds.val
    for index, rec in enumerate(val.records):
        # Stored frames are source frames 0, 2, ..., 12; flow fields start at 0..12, so every stored frame is
        # a candidate and frame position j (source 2j) must take flow fields 2j, 2j+1, 2j+2.
        assert rec.positions.tolist() == list(range(7))
        assert rec.flow_starts.tolist() == [0, 2, 4, 6, 8, 10, 12]
        sample = val[index]
        slots = segment_offsets(7, 2, None)
        sources = 2 * slots
        flow = sample["flow"].numpy() * (40 * 0.226)  # back to pixels
        scale = 32 / 28  # the test view resizes a 28 px centre crop to 32 px; flow vectors scale with it
        for k, s in enumerate(sources):
            fields = np.minimum(s + np.arange(3), 12)  # the stack repeats the last field at the end
            np.testing.assert_allclose(flow[k, 0::2].mean(axis=(1, 2)), fields / 4.0 * scale, rtol=2e-3)
            np.testing.assert_allclose(flow[k, 1::2].mean(axis=(1, 2)), (-fields / 4.0 - 1) * scale, rtol=2e-3)
        assert sample["rgb"].shape == (2, 3, SIZE, SIZE)
        assert sample["label"] == rec.label


def test_rgb_leaves_the_dataset_as_uint8_and_the_network_normalises_it(stores):
    import cv2

    import vfx
    from vfx.train.model import ModelConfig, TwoStreamNet, normalize_rgb

    cfg = DataConfig(num_segments=2, flow_length=2, crop_size=24, val_fraction=0.34)
    ds = build_video_datasets(stores["frames"], None, ("rgb",), cfg)
    rec, sample = ds.val.records[0], ds.val[0]
    rgb = sample["rgb"]
    assert rgb.dtype == torch.uint8 and rgb.shape == (2, 3, 24, 24)
    # The test view of the stored frames: the centre 28 px of 32 resized to 24, channels first.
    store = vfx.open_store(stores["frames"])
    frames = store.read_frames(rec.video_id, rec.positions[segment_offsets(len(rec.positions), 2, None)])
    store.close()
    expected = [cv2.resize(np.ascontiguousarray(f[2:30, 2:30]), (24, 24), interpolation=cv2.INTER_LINEAR) for f in frames]
    assert np.array_equal(rgb.numpy(), np.stack(expected).transpose(0, 3, 1, 2))

    # Normalisation is the ImageNet formula in float32, bit for bit, for every value and channel.
    values = torch.arange(256, dtype=torch.uint8).view(1, 256, 1).expand(3, 256, 2)
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    formula = (np.arange(256, dtype=np.float32)[None, :] / np.float32(255.0) - mean[:, None]) / std[:, None]
    out = normalize_rgb(values)
    assert out.dtype == torch.float32 and np.array_equal(out[..., 0].numpy(), formula)
    assert values.dtype == torch.uint8  # its input is left as it was

    # The network takes the uint8 batch as it comes and gives what the normalised batch gives.
    torch.manual_seed(0)
    model = TwoStreamNet(ModelConfig(streams=("rgb",), width=4, num_segments=2), len(ds.classes)).eval()
    with torch.no_grad():
        a, b = model({"rgb": rgb[None]}), model({"rgb": normalize_rgb(rgb[None])})
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_stacks_follow_the_flow_step(stores, tmp_path):
    # Flow computed on the every-2nd-frame store: fields (0, 2), (2, 4), ...; a stack starting at source
    # frame s takes the fields starting at s, s+2, s+4.
    stepped = flow_store(stores["frames2"], tmp_path / "flow2")
    cfg = DataConfig(num_segments=2, flow_length=3, crop_size=SIZE, val_fraction=0.34)
    ds = build_video_datasets(stores["frames2"], stepped, ("rgb", "flow"), cfg)
    rec = ds.val.records[0]
    assert rec.positions.tolist() == list(range(6)) and rec.next_field.tolist() == [1, 2, 3, 4, 5, 5]
    flow = ds.val[0]["flow"].numpy() * (40 * 0.226) / (32 / 28)
    sources = 2 * segment_offsets(6, 2, None)
    for k, s in enumerate(sources):
        expected = np.minimum(s + 2 * np.arange(3), 10)
        np.testing.assert_allclose(flow[k, 0::2].mean(axis=(1, 2)), expected / 4.0, rtol=2e-3)


def test_a_stack_past_the_last_field_repeats_it(stores):
    cfg = DataConfig(num_segments=13, flow_length=4, crop_size=SIZE, val_fraction=0.34)
    ds = build_video_datasets(stores["frames"], stores["flow"], ("rgb", "flow"), cfg)
    sample = ds.val[0]
    x = sample["flow"].numpy()[-1, 0::2].mean(axis=(1, 2)) * (40 * 0.226) / (32 / 28)
    np.testing.assert_allclose(x, [12 / 4.0] * 4, rtol=2e-3)  # last candidate frame 12, only field 12 left


def test_horizontal_flip_mirrors_frames_and_negates_flow_x(stores):
    common = dict(num_segments=2, flow_length=2, crop_size=SIZE, scales=(1.0,), val_fraction=0.34)
    plain = build_video_datasets(stores["frames"], stores["flow"], ("rgb", "flow"), DataConfig(flip=False, **common))
    flips = build_video_datasets(stores["frames"], stores["flow"], ("rgb", "flow"), DataConfig(flip=True, **common))
    flipped, total = 0, 0
    for epoch, i in [(e, i) for e in range(3) for i in range(len(plain.train))]:
        plain.train.set_epoch(epoch)
        flips.train.set_epoch(epoch)
        a, b = plain.train[i], flips.train[i]
        total += 1
        if torch.equal(a["rgb"], b["rgb"]):
            assert torch.equal(a["flow"], b["flow"])
            continue
        flipped += 1
        assert torch.equal(b["rgb"], a["rgb"].flip(-1))
        assert torch.equal(b["flow"][:, 0::2], -a["flow"][:, 0::2].flip(-1))  # x reverses
        assert torch.equal(b["flow"][:, 1::2], a["flow"][:, 1::2].flip(-1))  # y does not
    assert 0 < flipped < total


def test_files_open_lazily_and_workers_reproduce_the_same_epoch(stores):
    cfg = DataConfig(num_segments=2, flow_length=2, crop_size=24, val_fraction=0.34)
    ds = build_video_datasets(stores["frames"], stores["flow"], ("rgb", "flow"), cfg, seed=3)
    assert not ds.train.stores.opened  # __init__ read the metadata and closed the files again
    copy = pickle.loads(pickle.dumps(ds.train))
    assert not copy.stores.opened
    ds.train.set_epoch(1)
    in_process = [ds.train[i] for i in range(len(ds.train))]
    assert ds.train.stores.opened
    loader = DataLoader(ds.train, batch_size=1, num_workers=2, shuffle=False)
    for i, batch in enumerate(loader):
        assert torch.equal(batch["rgb"][0], in_process[i]["rgb"])
        assert torch.equal(batch["flow"][0], in_process[i]["flow"])
    ds.train.set_epoch(2)
    assert any(not torch.equal(ds.train[i]["rgb"], in_process[i]["rgb"]) for i in range(len(ds.train)))


def test_single_stream_datasets_need_only_their_store(stores):
    cfg = DataConfig(num_segments=3, flow_length=2, crop_size=24, val_fraction=0.34)
    rgb = build_video_datasets(stores["frames"], None, ("rgb",), cfg)
    assert set(rgb.val[0]) == {"rgb", "label", "index"}
    flow = build_video_datasets(None, stores["flow"], ("flow",), cfg)
    assert flow.val[0]["flow"].shape == (3, 4, 24, 24)
    assert flow.classes == ("fall", "rise")


def test_wrong_store_kind_is_a_one_line_usage_error(stores):
    with pytest.raises(UsageError, match=r"frames.*is a frames store, expected a flow store"):
        build_video_datasets(stores["frames"], stores["frames"], ("rgb", "flow"), DataConfig())


@pytest.mark.parametrize(
    "splits, fraction, train, held",
    [
        ({"a": "train", "b": "train", "c": "test", "d": "test"}, None, ["a", "b"], ["c", "d"]),
        ({"a": "train", "b": "val", "c": "train", "d": "validation"}, None, ["a", "c"], ["b", "d"]),
    ],
)
def test_split_attribute_decides_when_no_fraction_is_given(splits, fraction, train, held):
    labels = {v: "x" for v in splits}
    got = split_ids(sorted(splits), labels, splits, DataConfig(val_fraction=fraction), "S")
    assert got[:2] == (train, held)


def test_val_fraction_holds_out_part_of_every_class_reproducibly():
    ids = [f"{c}{i}" for c in "abc" for i in range(10)]
    labels = {v: v[0] for v in ids}
    train, held, _ = split_ids(ids, labels, {}, DataConfig(val_fraction=0.3), "S")
    assert sorted({v[0] for v in held}) == ["a", "b", "c"]
    assert all(sum(v[0] == c for v in held) == 3 for c in "abc")
    assert set(train) | set(held) == set(ids) and not set(train) & set(held)
    assert split_ids(ids, labels, {}, DataConfig(val_fraction=0.3), "S")[1] == held


def test_one_sided_split_attribute_asks_for_val_fraction():
    with pytest.raises(UsageError, match="pass --val-fraction"):
        split_ids(["a", "b"], {"a": "x", "b": "x"}, {"a": "train", "b": "train"}, DataConfig(), "S")
