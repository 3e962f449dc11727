"""`vfx export`: each format read back the way its consumer reads it, resumability, filters and errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.interpolate import interp1d
from typer.testing import CliRunner

import vfx
from vfx.cli import app
from vfx.export import export_store

TINY_FEATURES = ["--short-side", "32", "--crop-size", "32", "--engine", "serial", "--no-progress", "--threads", "1"]


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def listed_dataset(tiny_dataset, tmp_path_factory) -> Path:
    """The tiny dataset as a list file with labels and splits (clips 0-3 train, 4-5 test)."""
    path = tmp_path_factory.mktemp("listed") / "videos.csv"
    rows = []
    for video in sorted(tiny_dataset.rglob("*.mkv")):
        n = int(video.stem.split()[-1])
        rows.append({"path": str(video), "label": video.parent.name, "split": "train" if n < 4 else "test",
                     "video_id": f"clip{n}"})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def frames_and_flow(listed_dataset, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("stores")
    frames, flow = root / "frames", root / "flow"
    r = cli("extract-frames", listed_dataset, "-o", frames, "--engine", "serial", "--no-progress")
    assert r.exit_code == 0, r.output
    r = cli("extract-flow", "--from-frames", frames, "-o", flow, "--backend", "dis", "--format", "jpeg",
            "--engine", "serial", "--no-progress")
    assert r.exit_code == 0, r.output
    return frames, flow


def read_rawframe_list(ann_file: Path, prefix: Path, modality: str) -> list[dict]:
    """What mmaction2's RawframeDataset (start_index 1) loads: per line `frame_dir total_frames label`, then
    `filename_tmpl.format(i)` for i in 1..total_frames (flow: `flow_{}_{:05d}.jpg` with 'x' and 'y')."""
    samples = []
    for line in ann_file.read_text().splitlines():
        frame_dir, total, label = line.split()
        folder = prefix / frame_dir
        if modality == "RGB":
            files = [(folder / "img_{:05}.jpg".format(i)).read_bytes() for i in range(1, int(total) + 1)]
        else:
            files = [(folder / "flow_{}_{:05d}.jpg".format(axis, i)).read_bytes()
                     for i in range(1, int(total) + 1) for axis in ("x", "y")]
        samples.append({"frame_dir": frame_dir, "total_frames": int(total), "label": int(label), "files": files})
    return samples


def stored_files(store, video_id):
    buffer, offsets = store.stored_jpegs(video_id)
    return [buffer[offsets[i] : offsets[i + 1]].tobytes() for i in range(len(offsets) - 1)]


def test_rawframes_read_like_mmaction2_give_the_stored_bytes(frames_and_flow, tmp_path):
    frames, flow = frames_and_flow
    out = tmp_path / "rawframes"
    for store in (frames, flow):
        r = cli("export", store, "-o", out, "--to", "rawframes", "--workers", "2", "--no-progress")
        assert r.exit_code == 0, r.output
        assert "6 written, 0 already exported, 0 failed of 6 videos" in r.stdout
    classes = [line.split() for line in (out / "classInd.txt").read_text().splitlines()]
    assert classes == [["1", "left"], ["2", "right"], ["3", "still"]]
    fs, fl = vfx.open_store(frames), vfx.open_store(flow)
    seen = set()
    for split in ("train", "test"):
        rgb = read_rawframe_list(out / f"frames_{split}.txt", out, "RGB")
        flo = read_rawframe_list(out / f"flow_{split}.txt", out, "Flow")
        assert [s["frame_dir"] for s in rgb] == [s["frame_dir"] for s in flo]
        for s, f in zip(rgb, flo):
            vid = s["frame_dir"]
            seen.add(vid)
            attrs = fs.attrs(vid)
            assert attrs["split"] == split
            assert s["label"] == f["label"] == ["left", "right", "still"].index(attrs["label"])  # 0-based
            assert s["total_frames"] == fs.num_frames(vid) and f["total_frames"] == fs.num_frames(vid) - 1
            assert s["files"] == stored_files(fs, vid)  # the stored JPEG bytes, not re-encoded
            assert f["files"] == stored_files(fl, vid)
            assert not (out / vid / f"img_{s['total_frames'] + 1:05d}.jpg").exists()
            assert (out / vid / "img_00001.jpg").exists() and not (out / vid / "img_00000.jpg").exists()
    assert len(seen) == 6
    # the flow JPEGs decode to the stored quantised flow (x then y)
    q = fl.read_flow("clip0", [0], dequantize=False)[0]
    x = cv2.imdecode(np.frombuffer((out / "clip0" / "flow_x_00001.jpg").read_bytes(), np.uint8), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(x, q[..., 0])


def test_export_resumes_after_a_kill_and_filters(frames_and_flow, tmp_path):
    frames, _ = frames_and_flow
    out = tmp_path / "rf"
    first = export_store(frames, out, "rawframes", split="test", workers=1)
    assert (first.total, first.done) == (2, 2)
    assert sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")) == ["clip4", "clip5"]
    assert (out / "frames_test.txt").exists() and not (out / "frames_train.txt").exists()
    # A run killed while writing clip0: half its files there, a temporary file, no line in the done log.
    log = out / ".vfx-export" / "frames-rawframes.jsonl"
    (out / "clip0").mkdir()
    (out / "clip0" / "img_00001.jpg.vfx-tmp-999").write_bytes(b"half")
    before = {p: p.stat().st_mtime_ns for p in (out / "clip4").iterdir()}
    again = export_store(frames, out, "rawframes", videos=["clip0", "clip4", "clip5"], workers=1)
    assert (again.done, again.skipped) == (1, 2)
    assert {p: p.stat().st_mtime_ns for p in (out / "clip4").iterdir()} == before  # not rewritten
    assert not list((out / "clip0").glob("*.vfx-tmp-*"))
    assert len(log.read_text().splitlines()) == 3
    assert sorted(line.split()[0] for line in (out / "frames_train.txt").read_text().splitlines()) == ["clip0"]
    # Another format's options, or an unknown video: clear usage errors.
    r = cli("export", frames, "-o", out, "--to", "rawframes", "--videos", "nope")
    assert r.exit_code == 2 and "no done video 'nope'" in r.stderr
    r = cli("export", frames, "-o", tmp_path / "x", "--to", "actionformer")
    assert r.exit_code == 2 and "--to actionformer exports features stores, this one holds 'frames'" in r.stderr
    r = cli("export", frames, "-o", tmp_path / "x", "--to", "avi")
    assert r.exit_code == 2 and "unknown export format 'avi'" in r.stderr


@pytest.fixture(scope="module")
def features_store(listed_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("feats") / "i3d"
    r = cli("features", listed_dataset, "-o", out, "--model", "i3d_rgb", "--clip-len", "8", "--stride", "4",
            *TINY_FEATURES)
    assert r.exit_code == 0, r.output
    return out


def test_bmn_matches_an_independent_interpolation(features_store, tmp_path):
    r = cli("export", features_store, "-o", tmp_path / "bmn", "--to", "bmn", "--rows", "10", "--workers", "1")
    assert r.exit_code == 0, r.output
    store = vfx.open_store(features_store)
    for vid in store.video_ids():
        lines = (tmp_path / "bmn" / f"{vid}.csv").read_text().splitlines()
        feats = store.read_features(vid).astype(np.float64)
        assert lines[0] == ",".join(f"f{i}" for i in range(feats.shape[1]))
        # mmaction2's LoadLocalizationFeature: np.loadtxt(skiprows=1, delimiter=',') then transpose
        got = np.loadtxt(tmp_path / "bmn" / f"{vid}.csv", dtype=np.float32, delimiter=",", skiprows=1)
        assert got.shape == (10, feats.shape[1])
        # Independently: clip centres in seconds from the stored source frames and the frame rate, ten
        # bins over the video's duration, scipy's linear interpolation, flat beyond the first/last clip.
        fps, duration = store.attrs(vid)["fps"], store.attrs(vid)["duration_sec"]
        clips = store.clip_frames(vid)
        centres = (clips[:, 0] + clips[:, 1] + 1) / 2 / fps
        targets = (np.arange(10) + 0.5) * duration / 10
        f = interp1d(centres, feats, axis=0, bounds_error=False, fill_value=(feats[0], feats[-1]))
        np.testing.assert_allclose(got, f(targets), rtol=1e-5, atol=1e-6)


def test_npy_matches_the_store(features_store, tmp_path):
    summary = export_store(features_store, tmp_path / "npy", "npy", workers=1)
    assert summary.done == 6
    store = vfx.open_store(features_store)
    for vid in store.video_ids():
        np.testing.assert_array_equal(np.load(tmp_path / "npy" / f"{vid}_i3d_rgb.npy"), store.read_features(vid))
        np.testing.assert_allclose(np.load(tmp_path / "npy" / f"{vid}_timestamps_ms.npy"),
                                   store.clip_timestamps(vid)[:, 0] * 1000)
        assert float(np.load(tmp_path / "npy" / f"{vid}_fps.npy")) == pytest.approx(25.0)


def test_actionformer_end_to_end_on_real_videos(samples, tmp_path):
    """THUMOS-style annotations, `vfx features --recipe thumos14-i3d` (random weights, tiny crops), `vfx export
    --to actionformer`, then a loader written from ActionFormer's convention (libs/datasets/thumos14.py)."""
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "carphone_pristine.mp4").symlink_to(samples["carphone_pristine"])
    frames, flow, feats, out = (tmp_path / n for n in ("frames", "flow", "feats", "af"))
    r = cli("extract-frames", videos, "-o", frames, "--recipe", "thumos14-i3d", "--engine", "serial", "--no-progress")
    assert r.exit_code == 0, r.output
    r = cli("extract-flow", "--from-frames", frames, "-o", flow, "--recipe", "thumos14-i3d", "--backend", "dis",
            "--engine", "serial", "--no-progress")
    assert r.exit_code == 0, r.output
    r = cli("features", frames, "-o", feats, "--from-flow", flow, "--recipe", "thumos14-i3d", *TINY_FEATURES)
    assert r.exit_code == 0, r.output
    r = cli("export", feats, "-o", out, "--to", "actionformer", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert "feat_stride 4, num_frames 16" in r.stdout

    fps = 30000 / 1001  # carphone's frame rate, as THUMOS14's annotation JSON records each video's
    annotations = {"database": {
        "carphone_pristine": {"subset": "Test", "duration": 120 / fps, "fps": fps, "annotations": [
            {"label": "Talk", "segment": [1.0, 2.5], "label_id": 0}, {"label": "Talk", "segment": [0.2, 0.9], "label_id": 0},
            {"label": "Walk", "segment": [2.6, 3.7], "label_id": 1}]},
    }}
    config = {"feat_stride": 4, "num_frames": 16, "default_fps": None, "file_ext": ".npy"}  # configs/thumos_i3d.yaml
    meta = json.loads((out / "actionformer_meta.json").read_text())
    store = vfx.open_store(feats)
    for video_id, entry in annotations["database"].items():
        assert meta[video_id] == {"fps": pytest.approx(fps), "duration": pytest.approx(120 / fps, abs=0.05),
                                  "feat_stride": 4, "num_frames": 16, "first_frame": 0}
        x = np.load(out / f"{video_id}{config['file_ext']}").astype(np.float32)  # [T, C]
        assert x.dtype == np.float32 and x.shape == (store.clip_frames(video_id).shape[0], 2048)
        # RGB then flow, as ActionFormer's 2048-d I3D features are
        group = store.group(video_id)
        np.testing.assert_array_equal(x[:, :1024], group["features_i3d_rgb"][()])
        np.testing.assert_array_equal(x[:, 1024:], group["features_i3d_flow"][()])
        for ann in entry["annotations"]:
            seg = np.asarray(ann["segment"], np.float64)
            grid = (seg * entry["fps"] - 0.5 * config["num_frames"]) / config["feat_stride"]
            rows = np.arange(math.ceil(grid[0]), math.floor(grid[1]) + 1)
            assert len(rows) >= 3
            # the clips whose centre frame lies inside the segment, from the stored clip frames
            clips = store.clip_frames(video_id)
            centre = (clips[:, 0] + clips[:, 1] + 1) / 2
            inside = np.flatnonzero((centre >= seg[0] * fps) & (centre <= seg[1] * fps))
            np.testing.assert_array_equal(rows, inside)
            np.testing.assert_array_equal(x[rows], store.read_features(video_id)[inside])
