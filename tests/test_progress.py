"""Progress inside a video: every stage reports its units (frames, pairs, clips) as it goes, the bar shows
units/s and the time left of the videos in flight, serial and under Ray, and summaries use the stage's unit."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from test_features_support import tiny_params
from vfx.cli import app
from vfx.engine import RunOptions, run_stage
from vfx.engine import driver as driver_module
from vfx.features import ClipParams, ModelChoice, extract_features
from vfx.flow import FlowParams
from vfx.flow.stage import FlowStage
from vfx.frames import FrameParams, FramesStage
from vfx.sources import load_items


def _reports(stage, item):
    """(calls to report, units summed) while the stage's output stream of one video is consumed."""
    calls: list[tuple[int, int | None]] = []
    stage._progress = lambda done, total: calls.append((done, total))
    output = stage.process(item)
    for _ in output.stream or ():
        pass
    return calls, sum(done for done, _ in calls)


@pytest.mark.parametrize("fmt", ["jpeg", "raw"])
def test_frames_stage_reports_every_frame(tiny_dataset, fmt):
    item = load_items(tiny_dataset)[5]  # 30 frames
    calls, units = _reports(FramesStage(FrameParams(format=fmt), window=8), item)
    assert calls[0] == (0, 30) and units == 30 and len(calls) == 1 + 4  # windows of 8: 8, 8, 8, 6


def test_flow_stage_reports_pairs(tiny_dataset):
    item = load_items(tiny_dataset)[5]
    stage = FlowStage(FlowParams(backend="dis", batch_size=8))
    assert stage.unit == "pairs"
    calls, units = _reports(stage, item)
    assert calls[0] == (0, 29) and units == 29 and len(calls) > 2


def _recorded_bar(monkeypatch) -> list[tuple[int, int, float | None]]:
    """(videos done, units in flight, seconds left) every time the driver's bar is updated."""
    seen: list[tuple[int, int, float | None]] = []
    real = driver_module.Progress.show

    def show(self, summary, inflight_units=0, eta_sec=None, force=False):
        seen.append((summary.done, inflight_units, eta_sec))
        return real(self, summary, inflight_units, eta_sec, force)

    monkeypatch.setattr(driver_module.Progress, "show", show)
    return seen


def test_features_bar_moves_inside_a_video(tiny_dataset, tmp_path, monkeypatch):
    seen = _recorded_bar(monkeypatch)
    items = load_items(tiny_dataset)[5:]
    params = tiny_params(ModelChoice.of("i3d_rgb"), clips=ClipParams(clip_len=4, stride=4), batch_size=2)
    with pytest.warns(Warning):
        summary = extract_features(items, tmp_path / "f", params, RunOptions(engine="serial", progress=False))
    assert summary.unit == "clips" and summary.units == 7  # 30 frames: clips of 4 every 4
    inside = [(units, eta) for done, units, eta in seen if done == 0 and 0 < units < 7]
    assert inside and all(eta is not None and eta >= 0 for _, eta in inside)


def test_ray_workers_report_progress_inside_a_video(tiny_dataset, tmp_path, monkeypatch, ray_local):
    from vfx.engine import ray_pool

    monkeypatch.setattr(ray_pool, "POLL_SEC", 0.02)  # the driver asks busy workers this often
    seen = _recorded_bar(monkeypatch)
    items = load_items(tiny_dataset)[5:]
    stage = FlowStage(FlowParams(batch_size=1))  # TV-L1: tens of ms a pair, 29 pairs
    summary = run_stage(stage, items, tmp_path / "flow", RunOptions(engine="ray", workers=1, progress=False))
    assert summary.done == 1 and summary.units == 29 and "pairs/s" in summary.line()
    inside = [units for done, units, eta in seen if done == 0 and 0 < units < 29 and eta is not None]
    assert inside, seen


def test_cli_bar_and_summary_name_pairs(tiny_dataset, tmp_path):
    args = ["extract-flow", tiny_dataset, "-o", tmp_path / "flow", "--backend", "dis", "--engine", "serial"]
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    assert "pairs/s" in r.stderr  # the bar
    assert "pairs/s) ->" in r.stdout  # the summary line
