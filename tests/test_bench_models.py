"""scripts/bench_models.py's choice of one model per family (what `--per-family` times in bf16)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("bench_models", ROOT / "scripts" / "bench_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_model_per_family_prefers_the_family_name_then_the_fewest_gflops():
    bench = load_script()
    assert bench.family_of("msnet_r18") == "msnet" and bench.family_of("r3d_18") == "video_resnet"
    # corrnet.py also registers r2plus1d_26 (fewer GFLOPs, no correlation): corrnet_26 stands for the family.
    assert bench.family_of("r2plus1d_26") == "corrnet"
    chosen = bench.one_per_family(["corrnet_50", "r2plus1d_26", "corrnet_26", "msnet_r50", "msnet_r18", "r3d_18"])
    assert sorted(chosen) == ["corrnet_26", "msnet_r18", "r3d_18"]
