import cv2
import numpy as np

from vfx.codec import decode_jpegs, encode_jpegs, encode_jpegs_yuv420
from vfx.image import Resize, yuv420_from_rgb
from videos import pattern_frames


def test_decoded_pixels_are_opencvs_in_rgb_and_grey():
    frames = pattern_frames(3, 64, 48, seed=9, smooth=True)
    buffer, offsets = encode_jpegs(frames, 95)
    want = np.stack([cv2.cvtColor(cv2.imdecode(buffer[offsets[i] : offsets[i + 1]], cv2.IMREAD_COLOR),
                                  cv2.COLOR_BGR2RGB) for i in range(3)])
    np.testing.assert_array_equal(decode_jpegs(buffer, offsets, [0, 1, 2]), want)
    grey, grey_offsets = encode_jpegs(frames[..., 0], 95)
    want = np.stack([cv2.imdecode(grey[grey_offsets[i] : grey_offsets[i + 1]], cv2.IMREAD_GRAYSCALE) for i in [2, 0]])
    np.testing.assert_array_equal(decode_jpegs(grey, grey_offsets, [2, 0], gray=True), want)


def test_planar_jpegs_of_video_levels_decode_to_full_range_colours():
    """Planes at video levels (16..235) are stretched to JPEG's 0..255: a mid grey and saturated colours come
    back as the RGB they stand for (BT.601), whatever the frame size's parity (odd sizes: chroma rounded up)."""
    rgb = np.zeros((2, 15, 21, 3), np.uint8)
    rgb[0] = (128, 128, 128)
    rgb[1, :, :10] = (200, 40, 40)
    rgb[1, :, 10:] = (30, 60, 220)
    planes = yuv420_from_rgb(rgb)
    assert planes.u_thw.shape == (2, 8, 11) and planes.full_range
    # the same colours at video levels: Y' = 16 + 219/255 Y, C' = 128 + 224/255 (C - 128)
    video = type(planes)(np.round(16 + planes.y_thw * (219 / 255)).astype(np.uint8),
                         np.round(128 + (planes.u_thw.astype(float) - 128) * (224 / 255)).astype(np.uint8),
                         np.round(128 + (planes.v_thw.astype(float) - 128) * (224 / 255)).astype(np.uint8), False)
    for source in (planes, video):
        buffer, offsets = encode_jpegs_yuv420(source, 95)
        got = decode_jpegs(buffer, offsets, [0, 1]).astype(int)
        assert got.shape == rgb.shape
        # away from the colour edge (4:2:0 chroma blurs it), within about a grey level of the source colours;
        # (read as video levels without the stretch, the grey would come back as 126)
        for part in (np.s_[:, :, 2:8], np.s_[:, :, 13:]):
            assert np.abs(got[part] - rgb[part]).mean() < 1.5 and np.abs(got[part] - rgb[part]).max() <= 12


def test_planes_resize_like_frames():
    planes = yuv420_from_rgb(pattern_frames(2, 64, 48, seed=3))
    small = Resize(short_side=24).apply_yuv420(planes)
    assert small.y_thw.shape == (2, 24, 32) and small.u_thw.shape == (2, 12, 16)
    np.testing.assert_array_equal(small.y_thw[1], cv2.resize(planes.y_thw[1], (32, 24), interpolation=cv2.INTER_LINEAR))
    cropped = small.center_crop(15, 9)
    assert cropped.y_thw.shape == (2, 9, 15) and cropped.u_thw.shape == (2, 5, 8)
    np.testing.assert_array_equal(cropped.y_thw, small.y_thw[:, 7:16, 8:23])
