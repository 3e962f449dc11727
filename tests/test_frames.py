import numpy as np
import pytest

from vfx.codec import decode_jpegs
from vfx.errors import UsageError, VideoError
from vfx.frames import FrameParams, FramesStage
from vfx.image import Resize, center_crop, parse_size
from vfx.sampling import Sampling
from vfx.types import VideoItem
from videos import pattern_frames, write_video


@pytest.mark.parametrize(
    "resize, source, expected",
    [
        (Resize(short_side=256), (640, 272), (602, 256)),  # bikes.mp4: 640*256/272 = 602.4 -> even 602
        (Resize(short_side=256), (1280, 720), (456, 256)),  # 455.1 -> even 456, as ffmpeg scale=-2:256
        (Resize(short_side=256), (176, 144), (176, 144)),  # never upscale unless asked
        (Resize(short_side=256, upscale=True), (176, 144), (312, 256)),
        (Resize(short_side=32), (48, 64), (32, 42)),  # portrait: width is the short side
        (Resize(size=(340, 256)), (1280, 720), (340, 256)),
        (Resize(size=(340, 256)), (176, 144), (340, 256)),  # an exact size is exact (TSN/denseflow enlarge)
        (Resize(size=(340, 256), upscale=True), (176, 144), (340, 256)),
        (Resize(), (1280, 720), (1280, 720)),
    ],
)
def test_output_size(resize, source, expected):
    assert resize.output_size(*source) == expected


def test_resize_crop_and_size_parsing_errors():
    with pytest.raises(UsageError):
        Resize(short_side=256, size=(340, 256))
    with pytest.raises(UsageError, match="340x256"):
        parse_size("340*256")
    assert parse_size("340x256") == (340, 256)
    frames = np.arange(2 * 6 * 8 * 3, dtype=np.uint8).reshape(2, 6, 8, 3)
    np.testing.assert_array_equal(center_crop(frames, 4, 2), frames[:, 2:4, 2:6])
    with pytest.raises(UsageError, match="larger"):
        center_crop(frames, 10, 2)


def _run(stage, item):
    out = stage.process(item)
    streamed = {}
    for chunk in out.stream:
        for name, array in chunk.items():
            streamed.setdefault(name, []).append(array)
    return out, {k: np.concatenate(v) for k, v in streamed.items()}


def test_raw_frames_keep_size_are_exact_with_indices_and_times(tmp_path):
    frames = pattern_frames(40, seed=1, dx=2)
    path = write_video(tmp_path / "v.mkv", frames, fps=20)
    stage = FramesStage(FrameParams(resize=Resize(), format="raw"), window=16)
    out, data = _run(stage, VideoItem("v", str(path)))
    np.testing.assert_array_equal(data["frames"], frames)
    np.testing.assert_array_equal(out.datasets["frame_index"], np.arange(40))
    np.testing.assert_allclose(out.datasets["timestamp_sec"], np.arange(40) / 20, atol=1e-6)
    assert out.attrs["fps"] == pytest.approx(20)
    assert (out.attrs["width"], out.attrs["height"], out.attrs["num_frames"]) == (64, 48, 40)


def test_jpeg_frames_every_nth_and_segment(tmp_path):
    frames = pattern_frames(40, seed=2, dx=1, smooth=True)
    path = write_video(tmp_path / "v.mkv", frames, fps=20)
    stage = FramesStage(FrameParams(sampling=Sampling(mode="every", every=3), resize=Resize(), quality=95), window=4)
    out, data = _run(stage, VideoItem("v", str(path), start_sec=0.5, end_sec=1.5))
    expected = np.arange(10, 30, 3)  # frames shown in [0.5 s, 1.5 s) at 20 fps, every third
    np.testing.assert_array_equal(out.datasets["frame_index"], expected)
    offsets = data["jpeg_offsets"]
    assert offsets[0] == 0 and len(offsets) == len(expected) + 1 and offsets[-1] == len(data["jpeg"])
    decoded = decode_jpegs(data["jpeg"], offsets, range(len(expected)))
    # q95 JPEG of a smooth texture: a few grey levels from the source on average, and in RGB order
    source = frames[expected][:, 1:, 1:].astype(int)
    err = np.abs(decoded[:, 1:, 1:].astype(int) - source).mean()
    swapped = np.abs(decoded[:, 1:, 1:, ::-1].astype(int) - source).mean()
    assert decoded.shape == (len(expected), 48, 64, 3) and err < 4 and swapped > 3 * err


def test_segments_resize_and_crop(tmp_path):
    path = write_video(tmp_path / "v.mkv", pattern_frames(30, width=96, height=64))
    params = FrameParams(sampling=Sampling(mode="segments", segments=3), resize=Resize(short_side=32),
                         crop=(32, 32), format="raw")
    out, data = _run(FramesStage(params), VideoItem("v", str(path)))
    np.testing.assert_array_equal(out.datasets["frame_index"], [5, 15, 25])  # TSN centre of each 10-frame segment
    assert data["frames"].shape == (3, 32, 32, 3)


def test_bad_params_and_bad_video(tmp_path):
    with pytest.raises(UsageError):
        FrameParams(format="png")
    with pytest.raises(UsageError):
        FrameParams(quality=0)
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(VideoError, match="bad.mp4"):
        FramesStage().process(VideoItem("bad", str(bad)))


def test_fixed_fps_sampling_follows_timestamps_of_a_variable_frame_rate_file(tmp_path):
    from videos import grey_level_frame_numbers, write_vfr_video

    # 5 frames at 10 fps, then 10 frames at 50 fps: the average rate (~18 fps) describes neither part.
    times = [0.0, 0.1, 0.2, 0.3, 0.4] + [0.5 + 0.02 * k for k in range(10)]
    path = write_vfr_video(tmp_path / "vfr.mp4", times)
    stage = FramesStage(FrameParams(sampling=Sampling(mode="fps", fps=10), resize=Resize(), format="raw"))
    out, data = _run(stage, VideoItem("vfr", str(path)))
    # the frame on screen at 0, 0.1, ..., 0.6 s; the last frame ends at 0.70 s
    np.testing.assert_array_equal(out.datasets["frame_index"], [0, 1, 2, 3, 4, 5, 10])
    np.testing.assert_array_equal(grey_level_frame_numbers(data["frames"]), [0, 1, 2, 3, 4, 5, 10])
    np.testing.assert_allclose(out.datasets["timestamp_sec"], [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], atol=2e-3)


def _disagree(*args, **kwargs):  # as when the capture disagrees with decord: decord delivers the pixels
    import vfx.decode

    raise vfx.decode._CaptureDisagrees("test")


@pytest.mark.parametrize("name", ["bikes", "bigbuckbunny"])
@pytest.mark.parametrize("decoder_path", ["capture", "decord"])
def test_raw_frames_are_the_hand_run_bilinear_resize_byte_for_byte(samples, name, decoder_path, monkeypatch):
    """The RGB path (`--format raw`, and the reference the JPEG path is measured against) gives what denseflow-
    style extraction gives: decode, OpenCV bilinear to short side 256; identical to that pipeline run by hand on
    decord's frames, whichever decoder path vfx took."""
    import cv2

    import vfx.decode
    from vfx.decode import read_frames

    if decoder_path == "decord":
        monkeypatch.setattr(vfx.decode._Capture, "read", _disagree)
    item = VideoItem(name, str(samples[name]))
    out, data = _run(FramesStage(FrameParams(sampling=Sampling(mode="every", every=3), format="raw"), window=16), item)
    indices = out.datasets["frame_index"]
    source = read_frames(str(samples[name]), indices)
    width, height = Resize(short_side=256).output_size(source.shape[2], source.shape[1])
    assert (out.attrs["width"], out.attrs["height"]) == (width, height)
    want = np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR) for frame in source])
    np.testing.assert_array_equal(data["frames"], want)


def _rgb_path_jpegs(frames, width, height, quality=95):
    """Today's JPEG path by hand: RGB frames, OpenCV bilinear, OpenCV's JPEG encoder, decoded again."""
    import cv2

    out = []
    for frame in frames:
        small = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), (width, height), interpolation=cv2.INTER_LINEAR)
        data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
        out.append(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return np.stack(out)


@pytest.mark.parametrize("name", ["bikes", "carphone_pristine"])
@pytest.mark.parametrize("decoder_path", ["capture", "decord"])
def test_jpeg_frames_from_yuv_planes_stay_close_to_the_rgb_path(samples, name, decoder_path, monkeypatch):
    """Default JPEG frames are encoded from the decoder's 4:2:0 planes (resized as planes). They are 4:2:0 q95
    JPEGs of the same size as the RGB path's, a little brighter (swscale's YUV->RGB conversion in the RGB path
    truncates each channel: about 1.4 grey levels darker than BT.601, see README), and otherwise within JPEG's
    own noise of it. On the decord fallback the planes come from RGB and the two agree more closely."""
    import cv2

    import vfx.decode
    from vfx.decode import read_frames

    if decoder_path == "decord":
        monkeypatch.setattr(vfx.decode._Capture, "read_yuv420", _disagree)
    item = VideoItem(name, str(samples[name]))
    out, data = _run(FramesStage(FrameParams(sampling=Sampling(mode="every", every=4)), window=16), item)
    indices = out.datasets["frame_index"]
    width, height = out.attrs["width"], out.attrs["height"]
    got = decode_jpegs(data["jpeg"], data["jpeg_offsets"], range(len(indices))).astype(int)
    want = _rgb_path_jpegs(read_frames(str(samples[name]), indices), width, height).astype(int)
    assert got.shape == want.shape == (len(indices), height, width, 3)
    first = data["jpeg"][: data["jpeg_offsets"][1]].tobytes()
    sof = first.index(b"\xff\xc0")
    assert first[sof + 11] == 0x22 and first[sof + 14] == first[sof + 17] == 0x11  # 4:2:0, as OpenCV's q95
    diff = got - want
    luma = diff @ np.array([0.299, 0.587, 0.114])
    bias = luma.mean()
    if decoder_path == "capture":
        assert 0.8 < bias < 2.0, bias  # the RGB path's truncation, not ours
    else:
        assert abs(bias) < 0.5, bias
    # without that offset, each channel is within a grey level of the RGB path on average
    assert np.abs(diff - bias).mean(axis=(0, 1, 2)).max() < 2.0, np.abs(diff - bias).mean(axis=(0, 1, 2))
