"""Recipes give the published data: sizes the stores really hold, and a note when a size is not applied."""

from __future__ import annotations

import tomllib

from typer.testing import CliRunner

import vfx
from videos import pattern_frames, write_video
from vfx.cli import app
from vfx.recipes import RECIPE_DIRS


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_tsn_ucf101_gives_340x256_frames_and_flow_from_320x240_videos(tmp_path):
    video = write_video(tmp_path / "videos" / "v_Test_g01_c01.avi", pattern_frames(4, width=320, height=240, dx=2))
    frames, flow = tmp_path / "frames", tmp_path / "flow"
    r = cli("extract-frames", video.parent, "-o", frames, "--recipe", "tsn-ucf101", "--engine", "serial", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "keep their own size" not in r.output
    r = cli("extract-flow", "--from-frames", frames, "-o", flow, "--recipe", "tsn-ucf101", "--backend", "dis",
            "--engine", "serial", "--no-progress")
    assert r.exit_code == 0, r.output
    fs, fl = vfx.open_store(frames), vfx.open_store(flow)
    assert fs.read_frames("v_Test_g01_c01").shape == (4, 256, 340, 3)
    assert (fs.attrs("v_Test_g01_c01")["width"], fs.attrs("v_Test_g01_c01")["height"]) == (340, 256)
    assert fl.read_flow("v_Test_g01_c01").shape == (3, 256, 340, 2)
    # and `vfx info` says what the store holds
    r = cli("info", frames)
    assert "340x256" in r.stdout


def test_a_short_side_that_is_not_applied_is_said_at_the_start(tmp_path):
    video = write_video(tmp_path / "videos" / "small.avi", pattern_frames(3, width=64, height=48))
    r = cli("extract-frames", video.parent, "-o", tmp_path / "f", "--short-side", "128", "--engine", "serial", "--no-progress")
    assert r.exit_code == 0, r.output
    first = r.stdout.splitlines()[0]
    assert first.startswith("note: small is 64x48: videos whose short side is under 128 keep their own size")
    assert vfx.open_store(tmp_path / "f").read_frames("small").shape[1:3] == (48, 64)
    r = cli("extract-frames", video.parent, "-o", tmp_path / "g", "--short-side", "128", "--upscale", "--engine", "serial", "--no-progress")
    assert "note:" not in r.stdout


def test_every_recipe_number_says_where_it_comes_from():
    for path in sorted(RECIPE_DIRS[0].glob("*.toml")):
        text = path.read_text()
        tables = tomllib.loads(text)
        assert "Where each number comes from" in text, path
        assert tables, path
