"""Unit tests of device.tools.evaluate with known values (no models, no video)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from device.errors import InputError
from device.tools import evaluate as ev
from device.vision.types import HandObservation


def square_hand(x0: float = 10.0, y0: float = 20.0, w: float = 100.0, h: float = 50.0) -> np.ndarray:
    """21 landmarks spread over a w×h box at (x0, y0): hand size = max(w, h)."""
    t = np.linspace(0.0, 1.0, 21)
    return np.stack([x0 + w * t, y0 + h * t[::-1]], axis=1)


def test_hand_size_single_and_batch() -> None:
    lm = square_hand(w=100, h=50)
    assert ev.hand_size(lm) == pytest.approx(100.0)
    batch = np.stack([lm, square_hand(w=30, h=80), np.full((21, 2), np.nan)])
    sizes = ev.hand_size(batch)
    assert isinstance(sizes, np.ndarray)
    assert sizes[:2] == pytest.approx([100.0, 80.0])
    assert np.isnan(sizes[2])
    # z is ignored
    lm3 = np.concatenate([lm, np.full((21, 1), 1e6)], axis=1)
    assert ev.hand_size(lm3) == pytest.approx(100.0)
    with pytest.raises(InputError):
        ev.hand_size(np.zeros((20, 2)))


def test_compare_known_errors() -> None:
    n = 10
    ref = np.stack([square_hand()] * n)  # hand size 100 px
    ref_det = np.ones(n, dtype=bool)
    ref_det[9] = False  # reference misses the last frame
    ref[9] = np.nan
    ours = ref.copy()
    ours[9] = square_hand()  # we detect there: a false detection
    # frame i shifted by i px in x: error i % of the 100 px hand
    for i in range(9):
        ours[i, :, 0] += i
    ours_det = np.ones(n, dtype=bool)
    ours_det[3] = False  # we miss frame 3
    ours[3] = np.nan
    r = ev.compare(ours_det, ours, ref_det, ref)
    assert r["frames"] == 10
    assert r["ref_detected"] == 9
    assert r["ours_detected"] == 9
    assert r["both_detected"] == 8
    assert r["detection_rate_vs_ref"] == pytest.approx(8 / 9)
    assert r["missed_frames"] == [3]
    assert r["false_detections"] == 1 and r["false_frames"] == [9]
    errs = np.array([0, 1, 2, 4, 5, 6, 7, 8], dtype=float)
    assert r["median_err_pct"] == pytest.approx(np.median(errs))
    assert r["p95_err_pct"] == pytest.approx(np.percentile(errs, 95))
    assert r["max_err_pct"] == pytest.approx(8.0)
    assert r["median_err_px"] == pytest.approx(4.5)
    assert r["worst_frames"][0] == [8, 8.0]
    json.dumps(r)  # JSON-ready
    reasons = ev.meets_acceptance(r)  # 88.9 % detection, median 4.5 %, p95 7.65 % (passes)
    assert len(reasons) == 2
    assert reasons[0].startswith("detection rate 88.9 %")
    assert reasons[1].startswith("median error 4.50 %")


def test_compare_uses_reference_hand_size_and_mean_of_joints() -> None:
    ref = square_hand(w=200, h=40)[None]
    ours = ref.copy()
    ours[0, 0] += [30.0, 40.0]  # one joint 50 px off: mean over 21 joints = 50/21 px
    r = ev.compare(np.array([True]), ours, np.array([True]), ref)
    assert r["median_err_pct"] == pytest.approx(100 * (50 / 21) / 200)
    assert ev.meets_acceptance(r) == []


def test_compare_nothing_in_common() -> None:
    ref = np.full((3, 21, 2), np.nan)
    r = ev.compare(np.zeros(3, bool), ref, np.zeros(3, bool), ref)
    assert r["detection_rate_vs_ref"] is None
    assert r["median_err_pct"] is None and r["worst_frames"] == []
    with pytest.raises(InputError):
        ev.compare(np.zeros(3, bool), ref, np.zeros(2, bool), ref[:2])


def test_flip_landmarks_matches_flipped_pixels() -> None:
    h, w = 6, 8
    img = np.zeros((h, w, 3), np.uint8)
    img[2, 1] = 255  # pixel centre at (1.5, 2.5)
    flipped = ev.flip_frame(img)
    (r,), (c,) = np.nonzero(flipped[..., 0])
    out = ev.flip_landmarks(np.array([[1.5, 2.5, 7.0]]), w)
    assert out[0] == pytest.approx([c + 0.5, r + 0.5, 7.0])
    assert ev.transform_reference(np.array([[1.5, 2.5]]), (w, h), "flip")[0, 0] == 6.5


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotate_landmarks_matches_rot90_pixels(k: int) -> None:
    h, w = 6, 8
    img = np.zeros((h, w, 3), np.uint8)
    img[2, 1] = 255
    rotated = ev.rotate_frame(img, k)
    assert rotated.shape[:2] == (ev.rotated_size((w, h), k)[1], ev.rotated_size((w, h), k)[0])
    assert rotated.flags.c_contiguous
    (r,), (c,) = np.nonzero(rotated[..., 0])
    out = ev.rotate_landmarks(np.array([[1.5, 2.5]]), (w, h), k)
    assert out[0] == pytest.approx([c + 0.5, r + 0.5])
    name = {1: "rot90", 2: "rot180", 3: "rot270"}[k]
    assert np.array_equal(ev.transform_frame(img, name), rotated)
    assert ev.transform_reference(np.array([[1.5, 2.5]]), (w, h), name) == pytest.approx(out)


def test_rotation_keeps_error_and_hand_size() -> None:
    ref = square_hand()[None]
    ours = ref + 3.0
    base = ev.compare(np.array([True]), ours, np.array([True]), ref)
    for variant in ("flip", "rot90", "rot270"):
        r = ev.compare(
            np.array([True]),
            ev.transform_reference(ours, (640, 480), variant),
            np.array([True]),
            ev.transform_reference(ref, (640, 480), variant),
        )
        assert r["median_err_pct"] == pytest.approx(base["median_err_pct"])
    with pytest.raises(InputError):
        ev.transform_reference(ref, (640, 480), "rot45")


def test_load_mp_reference_csv(tmp_path: Path) -> None:
    cols = ["frame", "time_s", "detected", "handedness", "score"]
    cols += [f"{a}{j}" for j in range(21) for a in ("x", "y")]
    cols += ["ext_ratio_2d", "ext_ratio_world"]
    lm = square_hand()
    row0 = ["0", "0.0", "1", "Left", "0.99"] + [f"{v}" for v in lm.ravel()] + ["0.3", "0.3"]
    row1 = ["1", "0.04", "0", "", ""] + [""] * 42 + ["", ""]
    p = tmp_path / "v.mp4.mp_reference.csv"
    p.write_text("\n".join(",".join(r) for r in (cols, row0, row1)) + "\n")
    det, out = ev.load_mp_reference_csv(p)
    assert det.tolist() == [True, False]
    assert out.shape == (2, 21, 2)
    assert out[0] == pytest.approx(lm)
    assert np.isnan(out[1]).all()
    with pytest.raises(InputError):
        ev.load_mp_reference_csv(tmp_path / "missing.csv")


def test_load_tfjs_and_reference_json(tmp_path: Path) -> None:
    lm = square_hand()
    frames = [[[float(x), float(y), 0.0] for x, y in lm], []]
    p = tmp_path / "tfjs.json"
    p.write_text(json.dumps(frames))
    det, out = ev.load_tfjs_reference(p)
    assert det.tolist() == [True, False]
    assert out[0] == pytest.approx(lm)

    doc = {
        "results": [
            {"detected": False, "landmarks": None},
            {"detected": True, "landmarks": [[x, y, 0.1] for x, y in lm.tolist()]},
        ]
    }
    q = tmp_path / "ref.json"
    q.write_text(json.dumps(doc))
    det, out = ev.load_reference_json(q)
    assert det.tolist() == [False, True]
    assert out[1] == pytest.approx(lm)
    q.write_text("{}")
    with pytest.raises(InputError):
        ev.load_reference_json(q)


def test_observations_to_arrays() -> None:
    lm = np.zeros((21, 3), np.float32)
    lm[:, :2] = square_hand()
    seen = HandObservation(0, 0.0, (640, 480), True, 0.9, "Left", 0.9, lm)
    lost = HandObservation(1, 0.1, (640, 480), False)
    det, out = ev.observations_to_arrays([[seen], [lost], []])
    assert det.tolist() == [True, False, False]
    assert out[0] == pytest.approx(square_hand())
    assert np.isnan(out[1:]).all()


def test_summarize() -> None:
    a = {"ref_detected": 10, "both_detected": 9, "false_detections": 1,
         "median_err_pct": 1.0, "p95_err_pct": 2.0}  # fmt: skip
    b = {"ref_detected": 10, "both_detected": 10, "false_detections": 0,
         "median_err_pct": 2.0, "p95_err_pct": None}  # fmt: skip
    s = ev.summarize([a, b])
    assert s["detection_rate_vs_ref"] == pytest.approx(0.95)
    assert s["worst_median_err_pct"] == 2.0 and s["worst_p95_err_pct"] == 2.0


def test_half_size_variant_maps_a_point_where_the_frame_puts_it() -> None:
    """A bright 4×4 square at a known place: after the "half" variant its centroid lies where
    transform_reference maps the square's centre."""
    img = np.zeros((360, 640, 3), np.uint8)
    img[200:204, 300:304] = 255  # centre (301.5, 201.5) in pixel-centre coordinates
    small = ev.transform_frame(img, "half")
    assert small.shape == (180, 320, 3)
    ys, xs = np.nonzero(small[:, :, 0])
    weights = small[ys, xs, 0].astype(float)
    centroid = [np.average(xs, weights=weights), np.average(ys, weights=weights)]
    mapped = ev.transform_reference(np.array([[301.5, 201.5]]), (640, 360), "half")[0]
    assert centroid == pytest.approx(mapped, abs=0.05)


def test_appearance_variants_keep_the_frame_and_its_coordinates() -> None:
    rng = np.random.default_rng(3)
    img = rng.integers(40, 200, (48, 64, 3), dtype=np.uint8)
    pts = np.array([[10.0, 20.0], [30.5, 7.25]])
    dark, bright = ev.transform_frame(img, "dark"), ev.transform_frame(img, "bright")
    assert dark.shape == img.shape and dark.dtype == np.uint8
    assert (dark <= img).all() and dark.mean() < img.mean()
    assert (bright >= img).all() and bright.mean() > img.mean()
    noisy = ev.transform_frame(img, "noise")
    assert np.array_equal(noisy, ev.transform_frame(img, "noise"))  # reproducible
    assert 4.0 < float(np.std(noisy.astype(float) - img)) < 12.0  # σ = 8 grey levels
    assert ev.transform_frame(img, "fast") is img  # "fast" drops frames, it does not change them
    for variant in ("dark", "bright", "noise", "fast"):
        assert np.array_equal(ev.transform_reference(pts, (64, 48), variant), pts)
    with pytest.raises(InputError, match="half, dark, bright, noise, fast"):
        ev.transform_frame(img, "sepia")
