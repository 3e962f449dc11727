"""`vfx info`: the frame sizes the store really holds, videos per split and label, failures; `--videos [--json]`."""

from __future__ import annotations

import csv
import json

from typer.testing import CliRunner

from videos import pattern_frames, write_video
from vfx.cli import app


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_info_summary_and_per_video_rows(tmp_path):
    rows = []
    for n, (w, h, label, split) in enumerate([(64, 48, "run", "train"), (80, 64, "run", "test"), (64, 48, "jump", "train")]):
        path = write_video(tmp_path / f"v{n}.mkv", pattern_frames(5 + n, width=w, height=h))
        rows.append({"path": path, "label": label, "split": split, "video_id": f"v{n}"})
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    rows.append({"path": tmp_path / "broken.mp4", "label": "jump", "split": "test", "video_id": "broken"})
    with open(tmp_path / "list.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    store = tmp_path / "frames"
    r = cli("extract-frames", tmp_path / "list.csv", "-o", store, "--keep-size", "--engine", "serial", "--no-progress")
    assert r.exit_code == 1, r.output

    out = cli("info", store).stdout
    assert "videos:   3 done, 1 failed" in out
    assert "frame size: 64x48 .. 80x64 (2 sizes) (as stored)" in out
    assert "frames:   18 in all, 5 .. 7 per video" in out
    assert "splits:   2: train 2, test 1" in out
    assert "labels:   2: run 2, jump 1" in out
    assert "failures:\n  broken: " in out

    table = cli("info", store, "--videos").stdout.splitlines()
    assert table[0].split()[:6] == ["video_id", "label", "split", "status", "frames", "size"]
    v1 = next(line for line in table if line.startswith("v1 "))
    assert v1.split()[:6] == ["v1", "run", "test", "done", "6", "80x64"] and str(tmp_path / "v1.mkv") in v1
    assert next(line for line in table if line.startswith("broken")).split()[1] == "failed"

    data = json.loads(cli("info", store, "--json").stdout)
    by_id = {d["video_id"]: d for d in data}
    assert by_id["v2"]["frames"] == 7 and by_id["v2"]["label"] == "jump" and by_id["v2"]["stored_bytes"] > 0
    assert abs(by_id["v0"]["duration_sec"] - 5 / 25) < 1e-6
    assert by_id["broken"]["status"] == "failed" and "broken.mp4" in by_id["broken"]["reason"]
