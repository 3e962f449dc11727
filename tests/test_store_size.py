"""No padding: a store on disk is its payload plus a small fixed cost per video and per shard (issue 11).

HDF5 allocates chunks whole: before schema 2 one 512-d feature vector sat in a 1 MiB chunk, and a features
store of the three sample videos was 3.2 MB. Streamed datasets are now written contiguous at their final
size (vfx/store/shard.py `_append_stream`).
"""

from __future__ import annotations

import os

import vfx
from typer.testing import CliRunner

from videos import pattern_frames, sample_video_dir, write_video
from vfx.cli import app


def _cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _files_bytes(path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _payload(store) -> int:
    """Bytes of every dataset of every done video, as numpy holds them."""
    total = 0
    for vid in store.video_ids():
        group = store.group(vid)
        total += sum(ds.size * ds.dtype.itemsize for ds in group.values())
    return total


def test_features_store_of_the_sample_videos_is_small(tmp_path):
    """msnet_r18, 8 segments, the three sample videos (small crops: the stored vectors are as large as at 224)."""
    out = tmp_path / "feat"
    _cli("features", sample_video_dir(), "-o", out, "--model", "msnet_r18", "--segments", "8", "--short-side", "64",
         "--crop-size", "64", "--engine", "serial", "--no-progress")
    store = vfx.open_store(out)
    assert len(store) >= 3 and store.read_features(store.video_ids()[0]).shape == (1, 512)
    size = _files_bytes(out)
    assert size == store.size_bytes()
    assert size < 256 * 1024, f"features store {size} bytes for a payload of {_payload(store)}"


def test_flow_store_is_its_payload_plus_a_little(tmp_path):
    """6 pairs at 340x256 (uint8 x/y): payload 1.04 MB; the store must stay under 1.15 x that + 64 KiB."""
    write_video(tmp_path / "videos" / "a.mkv", pattern_frames(7, 340, 256, seed=1, dx=2, smooth=True))
    out = tmp_path / "flow"
    _cli("extract-flow", tmp_path / "videos", "-o", out, "--size", "340x256", "--nscales", "1", "--warps", "1",
         "--inner-iterations", "2", "--outer-iterations", "1", "--engine", "serial", "--no-progress")
    store = vfx.open_store(out)
    assert store.read_flow("a", dequantize=False).shape == (6, 256, 340, 2)
    payload, size = _payload(store), _files_bytes(out)
    assert payload >= 6 * 256 * 340 * 2
    assert size < 1.15 * payload + 64 * 1024, f"flow store {size} bytes for a payload of {payload}"
