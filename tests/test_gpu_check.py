"""scripts/gpu_check.py: on a machine without a CUDA device it says so and succeeds (the GPU rows need one)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: run scripts/gpu_check.sh")
def test_gpu_check_without_cuda_says_so_and_exits_0():
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("no CUDA device") and "nothing to check" in proc.stdout


def test_gpu_check_refuses_an_empty_wheel_folder(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(tmp_path)], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}, timeout=300)
    assert proc.returncode == 1 and f"no .whl files in {tmp_path}" in proc.stdout
