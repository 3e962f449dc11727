import wave

import numpy as np
import pytest

from vfx.decode import DEFAULT_WINDOW, VideoFile, probe, read_frames
from vfx.errors import VideoError
from videos import pattern_frames, write_video


def test_probe_sample_videos(samples):
    info = probe(str(samples["bikes"]))
    assert (info.num_frames, info.width, info.height) == (250, 640, 272)
    assert info.fps == pytest.approx(25.0)
    assert info.duration_sec == pytest.approx(10.0, abs=0.05)
    np.testing.assert_allclose(info.timestamps_sec[:3], [0.0, 0.04, 0.08], atol=1e-6)
    info = probe(str(samples["carphone_pristine"]))
    assert (info.num_frames, info.width, info.height) == (120, 176, 144)
    assert info.fps == pytest.approx(30000 / 1001)


def test_lossless_video_reads_back_exactly_in_bounded_windows(tmp_path):
    frames = pattern_frames(70, seed=3, dx=1)
    path = write_video(tmp_path / "v.mkv", frames)
    with VideoFile(str(path)) as video:
        chunks = list(video.read(np.arange(70), window=32))
    assert [len(c) for c in chunks] == [32, 32, 6]  # memory bounded by the window, not the video
    np.testing.assert_array_equal(np.concatenate(chunks), frames)
    # random access by index returns exactly those frames, in the order asked
    picked = read_frames(str(path), np.array([5, 0, 69]))
    np.testing.assert_array_equal(picked, frames[[5, 0, 69]])
    assert DEFAULT_WINDOW <= 64


def _bad_files(tmp_path, samples):
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file, not a video\n" * 20)
    audio = tmp_path / "speech.mp4"
    with wave.open(str(tmp_path / "speech.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(8000, np.int16).tobytes())
    audio.write_bytes((tmp_path / "speech.wav").read_bytes())
    truncated = tmp_path / "truncated.mp4"
    data = samples["bikes"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return {"empty file": zero, "not a video": text, "no video stream": audio, "truncated": truncated}


def test_bad_files_raise_one_line_errors_naming_file_and_reason(tmp_path, samples):
    for reason, path in _bad_files(tmp_path, samples).items():
        with pytest.raises(VideoError) as info:
            probe(str(path))
        message = str(info.value)
        assert str(path) in message and "\n" not in message
        assert reason in message, message
    with pytest.raises(VideoError, match="no such file"):
        probe(str(tmp_path / "missing.mp4"))


def test_out_of_range_index_is_an_error(tmp_path):
    path = write_video(tmp_path / "v.mkv", pattern_frames(5))
    with VideoFile(str(path)) as video, pytest.raises(VideoError, match="out of range"):
        list(video.read(np.array([0, 5])))


def test_read_by_timestamps(tmp_path):
    """The frame on screen at each time: the latest frame whose timestamp is <= t."""
    frames = pattern_frames(10, seed=4)
    path = write_video(tmp_path / "v.mkv", frames, fps=10)
    with VideoFile(str(path)) as video:
        got = np.concatenate(list(video.read_times([0.0, 0.05, 0.1, 0.349, 0.35, 5.0])))
    np.testing.assert_array_equal(got, frames[[0, 0, 1, 3, 3, 9]])


def _decord_frames(path, indices):
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    return reader.get_batch([int(i) for i in indices]).asnumpy()


def _swscale_rgb(planes):
    """4:2:0 planes through swscale's default YUV->RGB conversion (what decord and OpenCV's capture use)."""
    import av

    out = []
    for y, u, v in zip(planes.y_thw, planes.u_thw, planes.v_thw):
        i420 = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(-1, y.shape[1])
        out.append(av.VideoFrame.from_ndarray(i420, format="yuv420p").to_ndarray(format="rgb24"))
    return np.stack(out)


def _exact_bt601(planes):
    """Float ITU-R BT.601 of video-range planes, chroma repeated over its 2x2 block: no rounding at all."""
    y = (planes.y_thw.astype(np.float32) - 16) * np.float32(255 / 219)
    u, v = ((c.astype(np.float32).repeat(2, 1).repeat(2, 2) - 128) * np.float32(255 / 224)
            for c in (planes.u_thw, planes.v_thw))
    rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], -1)
    return np.clip(rgb, 0, 255)


@pytest.mark.parametrize("name", ["bikes", "bigbuckbunny", "carphone_pristine"])
def test_front_to_back_reads_are_decords_frames_in_rounded_bt601(samples, name):
    """Reads go through PyAV's decoder (no decode-ahead) and hand out the frame decord numbers i: its planes,
    through swscale's default conversion, are decord's RGB byte for byte. vfx's RGB is those planes in rounded
    BT.601 (OpenCV's converter), exactly; swscale's fast conversion truncates instead, about 1-2 grey levels
    darker than exact per channel (why the RGB path does not use it)."""
    from vfx.image import rgb_from_yuv420

    path = samples[name]
    with VideoFile(str(path)) as video:
        n = min(video.info.num_frames, 16)
        planes = next(video.read_yuv420(np.arange(n), window=n))
        dense = np.concatenate(list(video.read(np.arange(n), window=32)))
        assert video._capture is not None and video._capture.next_index == n  # the capture delivered them
    decord_rgb = _decord_frames(path, np.arange(n))
    np.testing.assert_array_equal(_swscale_rgb(planes), decord_rgb)
    ours = np.stack([rgb_from_yuv420(y, u, v, planes.full_range) for y, u, v in zip(planes.y_thw, planes.u_thw, planes.v_thw)])
    np.testing.assert_array_equal(dense, ours)
    exact = _exact_bt601(planes)
    ours_bias, swscale_bias = (dense - exact).mean(axis=(0, 1, 2)), (decord_rgb - exact).mean(axis=(0, 1, 2))
    # Within rounding of exact, but for the rare sub-black pixels (luma < 16), which OpenCV clamps to black.
    assert np.abs(ours_bias).max() < 0.1 and (np.abs(dense - exact) > 1.0).mean() < 1e-3, ours_bias
    assert swscale_bias.max() < -0.8, swscale_bias
    # sparse ascending (TSN segments), then backwards: seeks and restarts still give decord's frames
    picks = np.array([3, 40, 41, 99, 7, 0, 119])
    with VideoFile(str(path)) as video:
        got = [_swscale_rgb(planes) for part in (picks[:4], picks[4:]) for planes in video.read_yuv420(part)]
    np.testing.assert_array_equal(np.concatenate(got), _decord_frames(path, picks))


def test_variable_frame_rate_dense_read_keeps_decord_numbering(tmp_path):
    from videos import grey_level_frame_numbers, write_vfr_video

    times = [0.0, 0.04, 0.08, 0.3, 0.34, 0.9, 0.94, 1.5]
    path = write_vfr_video(tmp_path / "vfr.mp4", times)
    with VideoFile(str(path)) as video:
        frames = np.concatenate(list(video.read(np.arange(len(times)), window=3)))
        assert video._capture is not None
    np.testing.assert_array_equal(grey_level_frame_numbers(frames), np.arange(len(times)))
    with VideoFile(str(path)) as video:
        planes = np.concatenate([_swscale_rgb(p) for p in video.read_yuv420(np.arange(len(times)), window=3)])
    np.testing.assert_array_equal(planes, _decord_frames(path, np.arange(len(times))))
    # flat greys 20 + 10 k come back as written, within the video's 219-step luma (swscale's conversion: 20 -> 19)
    assert np.abs(frames.astype(int) - (20 + 10 * np.arange(len(times)))[:, None, None, None]).max() <= 1


def test_capture_that_disagrees_with_decord_hands_over_to_decord(tmp_path):
    """A frame the capture delivers at another time than decord's index says: decord reads from then on."""
    import dataclasses

    frames = pattern_frames(40, seed=5, dx=2)
    path = write_video(tmp_path / "v.mkv", frames)
    with VideoFile(str(path)) as video:
        shifted = video.info.timestamps_sec.copy()
        shifted[20:] += 0.03  # from frame 20 on, most of a frame later than the file says
        video.info = dataclasses.replace(video.info, timestamps_sec=shifted)
        video.close_capture()  # the capture opened with the file's times; the next read opens it with these
        got = np.concatenate(list(video.read(np.arange(40), window=8)))
        assert video._capture is None and not video._capture_usable
    np.testing.assert_array_equal(got, frames)


@pytest.mark.parametrize("width", [48, 72])
def test_widths_decord_mis_decodes_are_read_with_the_capture(tmp_path, width):
    """decord 0.6 hands out 4-"channel" garbage for 48/72-px-wide streams; vfx reads them right anyway."""
    frames = pattern_frames(30, width, 32, seed=6, dx=1)
    path = write_video(tmp_path / f"w{width}.mkv", frames)
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    assert reader[0].shape[-1] != 3  # the bug this guards against is still there
    with pytest.raises(decord.DECORDError, match="size must exactly match"):
        reader.get_batch([0, 1])
    with VideoFile(str(path)) as video:
        assert (video.info.width, video.info.height, video.info.num_frames) == (width, 32, 30)
        np.testing.assert_array_equal(np.concatenate(list(video.read(np.arange(30), window=8))), frames)
        # any order, repeats and backward jumps, as TSN padding and random access ask
        picks = np.array([20, 3, 3, 29, 0])
        np.testing.assert_array_equal(np.concatenate(list(video.read(picks, window=2))), frames[picks])
        video.scale_to(24, 16)  # decord's scaler has the same bug: the capture and software resize remain
        np.testing.assert_array_equal(np.concatenate(list(video.read(np.arange(5)))), frames[:5])


def test_far_and_backward_jumps_seek_and_land_on_the_right_frames(tmp_path):
    frames = pattern_frames(600, 32, 24, seed=7, dx=1)
    path = write_video(tmp_path / "long.mkv", frames)
    picks = np.array([590, 591, 20, 21, 300, 5, 599])  # jumps of > MAX_SEQUENTIAL_GAP frames, and backwards
    with VideoFile(str(path)) as video:
        got = np.concatenate(list(video.read(picks, window=2)))
        assert video._capture is not None and video._capture_usable  # the capture's seeks were all exact
    np.testing.assert_array_equal(got, frames[picks])


@pytest.mark.parametrize("degrees, turns", [(90, 1), (180, 2)])
def test_phone_videos_with_a_rotation_tag_come_out_upright_as_ffmpeg_shows_them(tmp_path, degrees, turns):
    """Phone clips carry a display rotation; decord mis-copies 90-degree ones (4 "channels"), the capture
    rotates them as ffmpeg does."""
    import subprocess

    import cv2

    plain = write_video(tmp_path / "plain.mp4", pattern_frames(6, 64, 48, seed=8), fourcc="mp4v")
    tagged = tmp_path / f"rot{degrees}.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(plain), "-c", "copy", "-metadata:s:v:0",
                    f"rotate={degrees}", str(tagged)], check=True)
    upright = np.rot90(read_frames(str(plain), np.arange(6)), k=turns, axes=(1, 2))
    with VideoFile(str(tagged)) as video:
        assert (video.info.height, video.info.width) == upright.shape[1:3]
        np.testing.assert_array_equal(np.concatenate(list(video.read(np.array([4, 0, 5])))), upright[[4, 0, 5]])
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(tagged), "-frames:v", "1", str(tmp_path / "f.png")],
                   check=True)
    # ffmpeg's PNG went through swscale's truncating YUV->RGB (up to 3 levels darker than ours); turned any other
    # way, the pattern would differ by tens of levels
    shown = cv2.cvtColor(cv2.imread(str(tmp_path / "f.png")), cv2.COLOR_BGR2RGB).astype(int)
    assert shown.shape == upright[0].shape and np.abs(shown - upright[0]).max() <= 3
