"""Pure geometry of the tracker, checked against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from device.vision import landmarks as lmk
from device.vision import palm
from device.vision.filters import OneEuroFilter
from device.vision.geometry import Roi, apply_affine, normalize_radians, transform_rect


def test_anchor_count_and_positions() -> None:
    a = palm.generate_anchors()
    assert a.shape == (2016, 2)
    # stride 8 → 24×24 cells, 2 anchors each; first cell centre (0.5/24, 0.5/24)
    assert a[0] == pytest.approx([0.5 / 24, 0.5 / 24])
    assert a[1] == pytest.approx([0.5 / 24, 0.5 / 24])
    assert a[2] == pytest.approx([1.5 / 24, 0.5 / 24])
    assert a[1151] == pytest.approx([23.5 / 24, 23.5 / 24])
    # stride 16 (three layers merged) → 12×12 cells, 6 anchors each
    assert np.allclose(a[1152:1158], [0.5 / 12, 0.5 / 12])
    assert a[-1] == pytest.approx([11.5 / 12, 11.5 / 12])


def test_decode_crafted_tensor() -> None:
    anchors = palm.generate_anchors()
    raw = np.zeros((2016, 18), np.float32)
    i = 1152 + 6 * (12 * 5 + 7)  # stride-16 cell (x=7, y=5)
    raw[i, 0:4] = [19.2, -9.6, 38.4, 57.6]  # dx, dy, w, h in input px
    raw[i, 4:6] = [0.0, 19.2]  # keypoint 0 offset
    dec = palm.decode_boxes(raw, anchors)
    ax, ay = 7.5 / 12, 5.5 / 12
    cx, cy = ax + 0.1, ay - 0.05
    assert dec[i, :4] == pytest.approx([cx - 0.1, cy - 0.15, cx + 0.1, cy + 0.15], abs=1e-6)
    assert dec[i, 4:6] == pytest.approx([ax, ay + 0.1], abs=1e-6)


def test_sigmoid_clips() -> None:
    s = palm.sigmoid(np.array([-1e6, 0.0, 1e6]))
    assert s == pytest.approx([1 / (1 + math.exp(100)), 0.5, 1 / (1 + math.exp(-100))])


def test_weighted_nms_merges_overlaps_and_keeps_separate() -> None:
    dec = np.zeros((3, 18), np.float32)
    dec[0, :4] = [0.0, 0.0, 1.0, 1.0]
    dec[1, :4] = [0.1, 0.0, 1.1, 1.0]  # IoU with 0 ≈ 0.82
    dec[2, :4] = [5.0, 5.0, 6.0, 6.0]
    scores = np.array([0.9, 0.6, 0.7], np.float32)
    out = palm.weighted_nms(dec, scores, 0.3)
    assert len(out) == 2
    merged, s = out[0]
    assert s == pytest.approx(0.9)
    assert merged[0] == pytest.approx((0.0 * 0.9 + 0.1 * 0.6) / 1.5)
    assert out[1][0][:4] == pytest.approx([5, 5, 6, 6])


def test_letterbox_round_trip_portrait_and_landscape() -> None:
    for h, w in ((1080, 620), (360, 640), (100, 100)):
        img = np.zeros((h, w, 3), np.uint8)
        tensor, lb = palm.letterbox(img)
        assert tensor.shape == (1, 192, 192, 3)
        pts = np.array([[0.0, 0.0], [w, h], [w / 3, h / 5]], np.float32)
        back = lb.to_image(lb.to_input(pts) / 192)
        assert back == pytest.approx(pts, abs=0.5)
    # a white image letterboxed: the image area is 1, the padding 0
    t, lb = palm.letterbox(np.full((96, 192, 3), 255, np.uint8))
    assert lb.pad_y == 48 and lb.pad_x == 0
    assert t[0, 0, 0, 0] == 0 and t[0, 96, 96, 0] == pytest.approx(1.0)


def test_letterbox_samples_like_mediapipe() -> None:
    """The palm input is MediaPipe's: input pixel i samples image x = i / scale − pad (no
    half-pixel shift, no area averaging), zero border. A linear ramp shows the convention."""
    h, w = 720, 1280
    ramp = np.clip(np.arange(w) - 200.0, 0, 255)  # one grey level per image pixel
    img = np.repeat(np.tile(ramp, (h, 1))[:, :, None], 3, axis=2).astype(np.uint8)
    tensor, lb = palm.letterbox(img)
    assert lb.scale == pytest.approx(192 / 1280) and lb.pad_y == pytest.approx(42.0)
    for i in (35, 50, 65):  # image x 233.3, 333.3, 433.3
        expect = (i / lb.scale - 200.0) / 255.0
        assert tensor[0, 96, i, 0] == pytest.approx(expect, abs=0.6 / 255)
    assert tensor[0, :41].max() == 0.0 and tensor[0, 151:].max() == 0.0  # zero border


def test_roi_affine_round_trip_and_corners() -> None:
    roi = Roi(cx=200.0, cy=150.0, size=100.0, rotation=math.radians(30))
    m_in = roi.input_to_image(224)
    m_out = roi.image_to_input(224)
    pts = np.array([[0, 0], [224, 0], [112, 112], [10, 200]], np.float32)
    assert apply_affine(m_out, apply_affine(m_in, pts)) == pytest.approx(pts, abs=1e-3)
    assert apply_affine(m_in, np.array([112.0, 112.0])) == pytest.approx([200, 150])
    # model input corners land on the rotated square's corners
    assert apply_affine(m_in, pts[:2]) == pytest.approx(roi.corners()[:2], abs=1e-3)


def test_warp_roi_samples_the_right_pixels() -> None:
    img = np.zeros((300, 400, 3), np.uint8)
    img[140:160, 240:260] = 255  # white square centred at (250, 150)
    roi = Roi(cx=250.0, cy=150.0, size=112.0, rotation=math.radians(90))
    tensor, to_img = lmk.warp_roi(img, roi)
    assert tensor.shape == (1, 224, 224, 3)
    assert tensor[0, 112, 112, 0] == pytest.approx(1.0)
    assert tensor[0, 10, 10, 0] == 0.0
    assert apply_affine(to_img, np.array([112.0, 112.0])) == pytest.approx([250, 150], abs=1e-3)


def test_unprojection_maps_input_pixels_to_image() -> None:
    roi = Roi(cx=320.0, cy=240.0, size=224.0, rotation=0.0)
    _, to_img = lmk.warp_roi(np.zeros((480, 640, 3), np.uint8), roi)
    raw = np.zeros((21, 3), np.float32)
    raw[:, 0] = np.arange(21) * 10
    raw[:, 1] = 112
    raw[:, 2] = 22.4
    res = lmk.unproject(raw.reshape(-1), np.zeros(63), 0.9, 0.2, roi, to_img)
    assert res.landmarks[:, 0] == pytest.approx(208 + np.arange(21) * 10)
    assert res.landmarks[:, 1] == pytest.approx(240)
    assert res.landmarks[0, 2] == pytest.approx(22.4 / 224 / 0.4 * 224)
    assert res.handedness == "Right" and res.handedness_score == pytest.approx(0.8)


def test_unprojection_undoes_rotation() -> None:
    roi = Roi(cx=100.0, cy=100.0, size=224.0, rotation=math.pi / 2)
    to_img = roi.input_to_image(224)
    # a point straight "up" in the model input (towards the fingers)
    p = apply_affine(to_img, np.array([112.0, 12.0]))
    assert p == pytest.approx([200.0, 100.0], abs=1e-3)


def test_transform_rect_shift_and_square() -> None:
    r = transform_rect(100, 100, 40, 20, 0.0, scale=2.0, shift_y=-0.5)
    assert (r.cx, r.cy, r.size) == pytest.approx((100, 90, 80))
    r = transform_rect(100, 100, 40, 20, math.pi / 2, scale=1.0, shift_y=-0.5)
    assert (r.cx, r.cy) == pytest.approx((110, 100))


def test_palm_roi_rotation_points_fingers_up() -> None:
    kp = np.zeros((7, 2), np.float32)
    kp[0] = [100, 200]  # wrist
    kp[2] = [100, 100]  # middle MCP straight above: no rotation
    det = palm.PalmDetection(box=(50.0, 100.0, 150.0, 200.0), keypoints=kp, score=0.9)
    roi = det.to_roi()
    assert roi.rotation == pytest.approx(0.0)
    assert roi.size == pytest.approx(260.0)
    assert roi.cy == pytest.approx(100.0)  # shifted up by half the box
    kp[2] = [200, 200]  # fingers pointing right: the input's "up" maps to image right
    det = palm.PalmDetection(box=(50.0, 100.0, 150.0, 200.0), keypoints=kp, score=0.9)
    assert det.to_roi().rotation == pytest.approx(math.pi / 2)


def test_roi_from_landmarks_is_rotation_equivariant() -> None:
    rng = np.random.default_rng(0)
    lm = rng.uniform(-50, 50, (21, 3)).astype(np.float32)
    lm[0, :2] = [0, 80]
    lm[[5, 9, 13], :2] = [[-20, -20], [0, -25], [20, -20]]
    base = lmk.roi_from_landmarks(lm + [300, 300, 0])
    ang = math.radians(70)
    c, s = math.cos(ang), math.sin(ang)
    rot = lm.copy()
    rot[:, 0] = c * lm[:, 0] - s * lm[:, 1]
    rot[:, 1] = s * lm[:, 0] + c * lm[:, 1]
    turned = lmk.roi_from_landmarks(rot + [300, 300, 0])
    assert turned.size == pytest.approx(base.size, rel=1e-4)
    assert normalize_radians(turned.rotation - base.rotation) == pytest.approx(ang, abs=1e-4)


def test_one_euro_smooths_noise_and_follows_motion() -> None:
    f = OneEuroFilter(min_cutoff=1.0, beta=10.0, d_cutoff=1.0)
    rng = np.random.default_rng(1)
    still = [f(np.array([100.0]) + rng.normal(0, 2, 1), i / 30, scale=100.0) for i in range(60)]
    assert np.std(still[30:]) < 1.0
    f.reset()
    moving = [f(np.array([i * 10.0]), i / 30, scale=100.0)[0] for i in range(60)]
    assert moving[-1] > 590 - 30  # lags a little, never runs away
    assert f(np.array([5.0]), 0.0)[0] == 5.0  # time going backwards restarts the filter


def _still_and_moving(params: tuple[float, float, float]) -> tuple[float, float]:
    """Shake left on a still point (0.5 % of a 100-px hand of noise) and mean lag behind a
    fist-like 1 Hz swing of half a hand size, both in px, at 30 fps."""
    f = OneEuroFilter(*params)
    rng = np.random.default_rng(3)
    still = np.array(
        [f(np.array([100.0, 50.0]) + rng.normal(0, 0.5, 2), i / 30, scale=100.0) for i in range(300)]
    )
    f = OneEuroFilter(*params)
    t = np.arange(90) / 30
    x = 50 * (1 - np.cos(2 * np.pi * t)) / 2
    y = np.array([f(np.array([v]), ti, scale=100.0)[0] for v, ti in zip(x, t, strict=True)])
    return float(still[30:].std(axis=0).mean()), float(np.abs(y - x)[15:].mean())


def test_default_filter_lags_less_without_more_shake() -> None:
    from device.config import FilterConfig

    fc = FilterConfig()
    shake, lag = _still_and_moving((fc.min_cutoff, fc.beta, fc.d_cutoff))
    old_shake, old_lag = _still_and_moving((1.0, 10.0, 1.0))  # the defaults before tuning
    assert shake <= old_shake
    assert lag < 0.9 * old_lag


def test_warp_roi_repeats_the_frame_edge_like_mediapipe() -> None:
    """Past the frame, the crop repeats the edge pixels (MediaPipe's landmark crop does; a
    black border made the lite model lose a wrist just below the frame)."""
    img = np.zeros((200, 300, 3), np.uint8)
    img[:, 0] = (200, 10, 10)  # the left edge column
    roi = Roi(cx=20.0, cy=100.0, size=100.0, rotation=0.0)  # reaches 30 px past the left edge
    tensor, _ = lmk.warp_roi(img, roi)
    outside = tensor[0, 100:120, :40]  # input x < 67 lies left of the frame
    assert outside[..., 0] == pytest.approx(200 / 255, abs=1e-6)
    assert outside[..., 1] == pytest.approx(10 / 255, abs=1e-6)


def test_warp_roi_box_copy_matches_a_direct_warp_of_the_whole_frame() -> None:
    """The box copy (for speed) changes nothing but fixed-point rounding: ≤ 1 grey level."""
    import cv2

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for cx, cy, size, deg in [(320, 240, 200, 0), (40, 30, 300, 37), (630, 470, 150, -120),
                              (320, 240, 900, 75), (-500, -500, 50, 10)]:  # fmt: skip
        roi = Roi(float(cx), float(cy), float(size), math.radians(deg))
        tensor, _ = lmk.warp_roi(img, roi)
        direct = cv2.warpAffine(
            img, roi.image_to_input(224), (224, 224), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )  # fmt: skip
        assert np.abs(tensor[0] * 255 - direct).max() <= 1.0 + 1e-3, (cx, cy, size, deg)


def test_one_euro_matches_the_textbook_recurrence() -> None:
    """The vectorised filter equals Casiez et al.'s per-sample formulas."""
    rng = np.random.default_rng(0)
    xs = np.cumsum(rng.normal(0, 3, (40, 21, 3)), axis=0).astype(np.float32)
    f = OneEuroFilter(0.3, 10.0, 2.0)

    def alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * np.asarray(cutoff, dtype=np.float64))
        return 1.0 / (1.0 + tau / dt)

    x_prev = xs[0].astype(np.float64)
    dx_prev = np.zeros_like(x_prev)
    assert f(xs[0], 0.0, scale=50.0) == pytest.approx(xs[0])
    for i in range(1, len(xs)):
        dt = 1 / 30
        dx = (xs[i] - x_prev) / dt / 50.0
        dx_hat = alpha(2.0, dt) * dx + (1 - alpha(2.0, dt)) * dx_prev
        a = alpha(0.3 + 10.0 * np.abs(dx_hat), dt)
        x_hat = a * xs[i] + (1 - a) * x_prev
        got = f(xs[i], i * dt, scale=50.0)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, x_hat, rtol=1e-4, atol=1e-3)
        x_prev, dx_prev = x_hat, dx_hat
