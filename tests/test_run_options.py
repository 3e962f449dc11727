"""RunOptions: one set of execution options, checked once, reaching the library from every command's flags."""

import pytest
from typer.testing import CliRunner

from vfx.cli import app
from vfx.engine import RunOptions
from vfx.engine.options import DEFAULT_VIDEO_TIMEOUT_SEC, VIDEO_TIMEOUT_PER_VIDEO_SECOND
from vfx.errors import UsageError


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"engine": "spark"}, "--engine must be one of ray, serial, got 'spark'"),
        ({"workers": 0}, "--workers must be >= 1, got 0"),
        ({"shard_size": 0}, "--shard-size must be >= 1, got 0"),
        ({"video_timeout": 0}, "--video-timeout must be > 0 seconds, got 0"),
        ({"engine": "serial", "address": "auto"}, "--address joins a Ray cluster: it needs --engine ray"),
    ],
)
def test_bad_run_options_are_refused_with_the_flag_named(kwargs, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunOptions(**kwargs)


def test_video_timeout_is_taken_as_given_else_scaled_by_the_duration():
    assert RunOptions(video_timeout=7).timeout_for(3600.0) == 7.0
    assert RunOptions().timeout_for(None) == DEFAULT_VIDEO_TIMEOUT_SEC
    assert RunOptions().timeout_for(10.0) == DEFAULT_VIDEO_TIMEOUT_SEC  # short videos get the floor
    assert RunOptions().timeout_for(3600.0) == 3600.0 * VIDEO_TIMEOUT_PER_VIDEO_SECOND


@pytest.mark.parametrize("command", ["extract-frames", "extract-flow", "features"])
def test_every_stage_command_has_the_same_run_flags_with_the_dataclass_defaults(command):
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for flag in ("--workers", "--engine", "--address", "--overwrite", "--shard-size", "--retry-failed",
                 "--video-timeout", "--no-progress"):
        assert flag in result.output
    assert f"[default: {RunOptions.shard_size}]" in " ".join(result.output.split())


def test_a_bad_run_flag_is_a_usage_error_before_anything_is_read(tmp_path):
    result = CliRunner().invoke(app, ["extract-frames", str(tmp_path / "missing"), "-o", str(tmp_path / "s"),
                                      "--workers", "0"])
    assert result.exit_code == 2
    assert "--workers must be >= 1, got 0" in result.output
    assert not (tmp_path / "s").exists()
