"""`vfx extract-flow` end to end (serial engine, tiny lossless videos, reduced TV-L1 work)."""

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import vfx
from vfx.cli import app
from vfx.flow import OpenCVTVL1, TVL1Params, quantize

FAST = ["--nscales", "2", "--warps", "1", "--inner-iterations", "5", "--outer-iterations", "1"]
FAST_PARAMS = TVL1Params(nscales=2, warps=1, inner_iterations=5, outer_iterations=1)
runner = CliRunner()


def write_clip(path, num_frames, size=(96, 64), speed=(1.5, 0.5)):
    """FFV1 (lossless) clip of a smooth texture moving `speed` px per frame; returns the RGB frames."""
    rng = np.random.default_rng(0)
    base = cv2.resize(cv2.GaussianBlur((rng.random((80, 120, 3)) * 255).astype(np.uint8), (0, 0), 2), (240, 160))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25, size)
    frames = []
    for t in range(num_frames):
        m = np.float32([[1, 0, -20 - speed[0] * t], [0, 1, -20 - speed[1] * t]])
        bgr = cv2.warpAffine(base, m, size, flags=cv2.INTER_CUBIC)
        writer.write(bgr)
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    writer.release()
    return np.stack(frames)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    clips = {"a": write_clip(folder / "a.mkv", 7), "b": write_clip(folder / "b.mkv", 5, speed=(-1.0, 0.0))}
    return folder, clips


def gray(frames):
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_extract_flow_from_videos(videos, tmp_path):
    folder, clips = videos
    out = tmp_path / "flow"
    result = run("extract-flow", folder, "-o", out, "--engine", "serial", "--no-progress", *FAST)
    assert result.exit_code == 0, result.output
    store = vfx.open_store(out)
    assert store.kind == "flow" and sorted(store.video_ids()) == ["a", "b"]
    assert store.params["backend"] == "opencv" and store.params["tvl1"]["nscales"] == 2
    assert store.params["bound"] == 20.0 and store.params["step"] == 1
    pairs = store.flow_pairs("a")
    assert pairs.dtype == np.int32 and pairs.tolist() == [[k, k + 1] for k in range(6)]
    stored = store.read_flow("a", dequantize=False)
    assert stored.dtype == np.uint8 and stored.shape == (6, 64, 96, 2)
    g = gray(clips["a"])
    expected = quantize(OpenCVTVL1(FAST_PARAMS)(g[:-1], g[1:]), 20.0)
    assert np.array_equal(stored, expected)  # bytes on disk = quantised direct OpenCV flow
    attrs = store.attrs("a")
    assert (attrs["flow_format"], attrs["width"], attrs["height"], attrs["num_flows"]) == ("uint8", 96, 64, 6)
    # The texture moves left in the image (1.5 px/frame), so the mean flow is clearly negative in x (only
    # 5 iterations here, hence well short of -1.5).
    assert store.read_flow("a")[..., 0].mean() < -0.3


def test_video_too_short_fails_alone(videos, tmp_path):
    folder, _ = videos
    write_clip(tmp_path / "one.mkv", 1)
    write_clip(tmp_path / "two.mkv", 3)
    result = run("extract-flow", tmp_path, "-o", tmp_path / "flow", "--engine", "serial", "--no-progress",
                 "--step", "2", *FAST)
    assert result.exit_code == 1
    store = vfx.open_store(tmp_path / "flow")
    assert store.video_ids() == ["two"]
    assert "1 frame(s) selected, flow with step 2 needs at least 3" in store.failures()["one"]
    assert store.flow_pairs("two").tolist() == [[0, 2]]


def test_from_frames_store_is_aligned_by_frame_index(videos, tmp_path):
    folder, clips = videos
    frames = tmp_path / "frames"
    result = run("extract-frames", folder, "-o", frames, "--engine", "serial", "--no-progress", "--every", "2",
                 "--format", "raw")
    assert result.exit_code == 0, result.output
    out = tmp_path / "flow"
    result = run("extract-flow", "--from-frames", frames, "-o", out, "--engine", "serial", "--no-progress", *FAST)
    assert result.exit_code == 0, result.output
    fs, store = vfx.open_store(frames), vfx.open_store(out)
    index = fs.frame_index("a")
    assert index.tolist() == [0, 2, 4, 6]
    assert store.flow_pairs("a").tolist() == [[0, 2], [2, 4], [4, 6]]
    g = gray(fs.read_frames("a"))
    expected = quantize(OpenCVTVL1(FAST_PARAMS)(g[:-1], g[1:]), 20.0)
    assert np.array_equal(store.read_flow("a", dequantize=False), expected)
    assert store.attrs("a")["source_path"].endswith("a.mkv")
    # the form, INPUT and --from-frames together: the same flow, for the videos of INPUT
    both = tmp_path / "flow2"
    result = run("extract-flow", folder, "--from-frames", frames, "-o", both, "--engine", "serial", "--no-progress", *FAST)
    assert result.exit_code == 0, result.output
    assert np.array_equal(vfx.open_store(both).read_flow("a", dequantize=False), expected)


def test_formats_step_and_size(videos, tmp_path):
    folder, clips = videos
    g = gray(clips["a"])
    flow2 = OpenCVTVL1(FAST_PARAMS)(g[:-2], g[2:])
    result = run("extract-flow", folder, "-o", tmp_path / "f16", "--engine", "serial", "--no-progress", "--step", "2",
                 "--format", "float16", *FAST)
    assert result.exit_code == 0, result.output
    store = vfx.open_store(tmp_path / "f16")
    assert store.flow_pairs("a").tolist() == [[k, k + 2] for k in range(5)]
    assert store.read_flow("a", dequantize=False).dtype == np.float16
    assert np.abs(store.read_flow("a") - flow2).max() < 0.01
    result = run("extract-flow", folder, "-o", tmp_path / "jpg", "--engine", "serial", "--no-progress",
                 "--format", "jpeg", "--bound", "10", *FAST)
    assert result.exit_code == 0, result.output
    store = vfx.open_store(tmp_path / "jpg")
    flow = store.read_flow("a")
    expected = OpenCVTVL1(FAST_PARAMS)(g[:-1], g[1:])
    assert flow.shape == (6, 64, 96, 2) and store.attrs("a")["bound"] == 10.0
    assert np.abs(flow - np.clip(expected, -10, 10)).mean() < 0.1
    for asked in ([4, 1, 2, 4], [-1], [0, 1, 2]):  # scattered, repeated, in any order: exactly those fields
        np.testing.assert_array_equal(store.read_flow("a", asked), flow[asked])
    result = run("extract-flow", folder, "-o", tmp_path / "small", "--engine", "serial", "--no-progress",
                 "--size", "48x32", "--backend", "dis")
    assert result.exit_code == 0, result.output
    store = vfx.open_store(tmp_path / "small")
    assert store.read_flow("b").shape == (4, 32, 48, 2) and "not TV-L1" in store.params["algorithm"]


def test_torch_backend_through_the_stage(videos, tmp_path):
    folder, clips = videos
    result = run("extract-flow", folder, "-o", tmp_path / "t", "--engine", "serial", "--no-progress", "--backend",
                 "torch", "--device", "cpu", "--batch-size", "4", "--format", "float16", *FAST)
    assert result.exit_code == 0, result.output
    store = vfx.open_store(tmp_path / "t")
    g = gray(clips["a"])
    expected = OpenCVTVL1(FAST_PARAMS)(g[:-1], g[1:])
    assert np.abs(store.read_flow("a") - expected).max() < 0.01
    assert store.attrs("a")["device"] == "cpu"


@pytest.mark.parametrize("args, message", [
    ([], "give INPUT (videos), --from-frames STORE, or both"),
    (["IN", "--backend", "nope"], "--backend must be one of"),
    (["IN", "--device", "cuda"], "--device cuda needs --backend torch"),
    (["IN", "--format", "png"], "--format must be one of"),
    (["IN", "--size", "340x256", "--short-side", "256"], "either --size or --short-side"),
    (["IN", "--median-filtering", "4"], "median_filtering"),
    (["IN", "--backend", "torch", "--gamma", "0.1"], "gamma"),
])
def test_usage_errors(videos, tmp_path, args, message):
    folder, _ = videos
    args = [str(folder) if a == "IN" else str(tmp_path / "nothing") if a == "X" else a for a in args]
    result = runner.invoke(app, ["extract-flow", "-o", str(tmp_path / "o"), "--engine", "serial", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_recipe_fills_flow_parameters_and_flags_override(videos, tmp_path):
    folder, _ = videos
    recipe = tmp_path / "mine.toml"
    recipe.write_text('[extract-flow]\nsize = "48x32"\npreset = "denseflow"\nbound = 15.0\nformat = "jpeg"\n'
                      'outer_iterations = 1\nnscales = 2\nwarps = 1\ninner_iterations = 5\n')
    base = ["extract-flow", folder, "--engine", "serial", "--no-progress", "--recipe", recipe]
    assert run(*base, "-o", tmp_path / "r").exit_code == 0
    p = vfx.open_store(tmp_path / "r").params
    assert (p["preset"], p["bound"], p["format"], p["size"]) == ("denseflow", 15.0, "jpeg", [48, 32])
    assert p["tvl1"]["median_filtering"] == 1 and p["tvl1"]["nscales"] == 2  # denseflow: no median
    assert vfx.open_store(tmp_path / "r").read_flow("a").shape == (6, 32, 48, 2)
    # flags beat the recipe; a short side given on the command line replaces the recipe's exact size
    assert run(*base, "-o", tmp_path / "f", "--bound", "10", "--short-side", "40").exit_code == 0
    p = vfx.open_store(tmp_path / "f").params
    assert (p["bound"], p["size"], p["short_side"], p["format"]) == (10.0, None, 40, "jpeg")
    bad = tmp_path / "bad.toml"
    bad.write_text("[extract-flow]\nbounds = 20\n")
    result = runner.invoke(app, [str(a) for a in ["extract-flow", folder, "-o", tmp_path / "x", "--recipe", bad]])
    assert result.exit_code == 2 and "recipe sets unknown options: bounds" in result.output


def test_shipped_recipes_have_flow_tables():
    from vfx.flow.params import tvl1_preset
    from vfx.recipes import load_recipe

    tsn = load_recipe("tsn-ucf101", "extract-flow")
    assert (tsn["size"], tsn["preset"], tsn["bound"], tsn["format"]) == ("340x256", "denseflow", 20.0, "jpeg")
    assert tvl1_preset(tsn["preset"]).median_filtering == 1
    assert load_recipe("i3d-kinetics", "extract-flow")["bound"] == 20.0


def test_from_frames_refuses_a_flow_store(videos, tmp_path):
    folder, _ = videos
    assert run("extract-flow", folder, "-o", tmp_path / "f", "--engine", "serial", "--no-progress", *FAST).exit_code == 0
    result = runner.invoke(app, ["extract-flow", "--from-frames", str(tmp_path / "f"), "-o", str(tmp_path / "g")])
    assert result.exit_code == 2 and "needs a frames store" in result.output


@pytest.mark.parametrize("fmt", ["uint8", "jpeg"])
def test_chunk_borders_change_nothing(fmt):
    from vfx.codec import decode_jpegs
    from vfx.flow.stage import FlowParams, flow_stream

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(11, 6, 8), dtype=np.uint8)
    index = np.arange(100, 111)

    def backend(a, b):  # a stand-in "flow": the difference of the two frames, in both components
        d = (b.astype(np.float32) - a.astype(np.float32)) / 16
        return np.stack([d, -d], axis=-1)

    params = FlowParams(step=2, batch_size=3, format=fmt, jpeg_quality=100)
    first = None
    for sizes in ([11], [4, 4, 3], [1, 2, 8], [3] * 3 + [2]):
        bounds = np.cumsum([0] + sizes)
        chunks = [(frames[a:b], index[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        out = list(flow_stream(iter(chunks), backend, params))
        pairs = np.concatenate([c["flow_pairs"] for c in out])
        assert pairs.tolist() == [[100 + k, 102 + k] for k in range(9)]
        expected = quantize(backend(frames[:-2], frames[2:]), 20.0)
        if fmt == "uint8":
            got = np.concatenate([c["flow"] for c in out])
        else:
            buffer = np.concatenate([c["flow_jpeg"] for c in out])
            offsets = np.concatenate([c["flow_jpeg_offsets"] for c in out])
            assert offsets.shape == (19,) and offsets[-1] == buffer.size
            planes = decode_jpegs(buffer, offsets, range(18), gray=True)
            got = planes.reshape(9, 2, 6, 8).transpose(0, 2, 3, 1)
        first = got if first is None else first
        assert np.array_equal(got, first)  # identical bytes whatever the chunking
        # uint8 is exact; JPEG (even at quality 100) moves noisy pixels by a level or two.
        assert np.abs(got.astype(int) - expected).max() <= (0 if fmt == "uint8" else 3)
