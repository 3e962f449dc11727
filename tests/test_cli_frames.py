"""`vfx extract-frames` and `vfx info` through the real command line: exit codes, messages, files."""

import json
import shutil

import pytest
from typer.testing import CliRunner

import vfx
from vfx.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_extract_frames_then_info(tiny_dataset, tmp_path):
    code, out, err = invoke("extract-frames", tiny_dataset, "-o", tmp_path / "s", "--engine", "serial",
                            "--short-side", "32", "--every", "2", "--no-progress")
    assert code == 0, err
    assert "frames: 6 done, 0 failed" in out
    store = vfx.open_store(tmp_path / "s")
    assert store.params["sampling"]["mode"] == "every" and store.params["resize"]["short_side"] == 32
    vid = store.video_ids()[0]
    assert store.read_frames(vid).shape[1:] == (32, 42, 3)
    code, out, _ = invoke("info", tmp_path / "s")
    assert code == 0
    assert "kind:     frames" in out and "6 done, 0 failed" in out and '"every": 2' in out
    # the same command again finds everything done
    code, out, _ = invoke("extract-frames", tiny_dataset, "-o", tmp_path / "s", "--engine", "serial",
                          "--short-side", "32", "--every", "2", "--no-progress")
    assert code == 0 and "0 done, 0 failed, 6 already in the store" in out


def test_some_failed_exits_1_with_summary(tiny_dataset, tmp_path):
    folder = tmp_path / "v"
    shutil.copytree(tiny_dataset / "still", folder)
    (folder / "broken.avi").write_text("garbage")
    code, out, err = invoke("extract-frames", folder, "-o", tmp_path / "s", "--engine", "serial", "--no-progress")
    assert code == 1
    assert "2 done, 1 failed" in out
    assert "failed broken: " in err and "broken.avi" in err and "1 of 3 videos failed" in err
    code, out, _ = invoke("info", tmp_path / "s")
    assert "failures:" in out and "broken.avi" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["/no/such/folder", "-o", "{tmp}/s"], "/no/such/folder"),
        (["{data}", "-o", "{tmp}/s", "--fps", "5", "--every", "2"], "cannot be combined"),
        (["{data}", "-o", "{tmp}/s", "--recipe", "no-such-recipe"], "unknown recipe 'no-such-recipe'"),
        (["{data}", "-o", "{tmp}/s", "--size", "340by256"], "340x256"),
        (["{data}", "-o", "{tmp}/s", "--format", "png"], "format must be one of jpeg, raw"),
        (["{data}", "-o", "/proc/vfx-store", "--engine", "serial"], "not writable"),
        (["{data}", "-o", "{tmp}/s", "--engine", "spark"], "engine must be one of ray, serial"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tiny_dataset, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, data=tiny_dataset) for a in args]
    code, out, err = invoke("extract-frames", *args, "--no-progress")
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


def test_parameter_clash_with_existing_store(tiny_dataset, tmp_path):
    base = ["extract-frames", tiny_dataset / "left", "-o", tmp_path / "s", "--engine", "serial", "--no-progress"]
    assert invoke(*base)[0] == 0
    code, _, err = invoke(*base, "--quality", "80")
    assert code == 2 and "quality: 95 -> 80" in err and "--overwrite" in err
    code, _, _ = invoke(*base, "--quality", "80", "--overwrite")
    assert code == 0 and vfx.open_store(tmp_path / "s").params["quality"] == 80


def test_recipe_fills_parameters_and_flags_override(tiny_dataset, tmp_path):
    recipe = tmp_path / "mine.toml"
    recipe.write_text('[extract-frames]\nsize = "40x30"\nquality = 70\nsegments = 3\n')
    base = ["extract-frames", tiny_dataset / "left", "--engine", "serial", "--no-progress", "--recipe", recipe]
    assert invoke(*base, "-o", tmp_path / "a")[0] == 0
    params = vfx.open_store(tmp_path / "a").params
    assert params["resize"]["size"] == [40, 30] and params["quality"] == 70 and params["sampling"]["segments"] == 3
    assert invoke(*base, "-o", tmp_path / "b", "--quality", "90", "--short-side", "24")[0] == 0
    params = vfx.open_store(tmp_path / "b").params
    assert params["quality"] == 90 and params["resize"] == {**params["resize"], "short_side": 24, "size": None}
    bad = tmp_path / "bad.toml"
    bad.write_text("[extract-frames]\nshort_sid = 3\n")
    code, _, err = invoke(*base[:-1], bad, "-o", tmp_path / "c")
    assert code == 2 and "unknown options: short_sid" in err


def test_shipped_recipes_parse(tiny_dataset, tmp_path):
    from vfx.recipes import list_recipes, load_recipe

    names = list_recipes()
    assert {"tsn-ucf101", "i3d-kinetics"} <= set(names)
    assert load_recipe("tsn-ucf101", "extract-frames")["size"] == "340x256"
    json.dumps(load_recipe("i3d-kinetics", "extract-frames"))


def test_joining_a_ray_cluster_that_is_not_there_is_a_usage_error(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code, _, err = invoke("extract-frames", tiny_dataset, "-o", tmp_path / "s", "--address", "127.0.0.1:1",
                          "--no-progress")
    assert code == 2 and "cannot connect to Ray at '127.0.0.1:1'" in err
