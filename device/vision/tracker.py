"""Video-mode hand tracker: palm detector only when a hand is missing, ROI carried over.

Owns its two models and the per-hand state; returns frozen :class:`HandObservation` values.
Follows MediaPipe's ``hand_landmark_tracking_cpu.pbtxt``: detect palms when fewer hands are
tracked than asked for, drop detections that overlap a tracked ROI (similarity 0.5), run
the landmark model on every ROI, keep hands whose presence ≥ threshold, and derive the next
frame's ROI from this frame's landmarks.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from device.config import Config, TrackerConfig
from device.errors import InputError
from device.vision import landmarks as lmk
from device.vision import palm
from device.vision.filters import OneEuroFilter
from device.vision.geometry import Roi, normalize_radians
from device.vision.runtime import TFLiteModel, load_model
from device.vision.types import HandObservation

log = logging.getLogger(__name__)

MIN_FRAME_SIDE = 32
MAX_FRAME_SIDE = 4096
ROI_SIMILARITY = 0.5


def check_frame(rgb: object) -> np.ndarray:
    """Validate a frame: uint8 RGB [H, W, 3] within the supported size range."""
    if not isinstance(rgb, np.ndarray):
        raise InputError(f"a frame must be a numpy array, got {type(rgb).__name__}")
    if rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 1):
        raise InputError(
            f"frame is grayscale ({rgb.shape[1]}×{rgb.shape[0]}); the tracker needs RGB "
            "frames [H, W, 3] — convert it first (e.g. cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB))"
        )
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"frame must have shape [H, W, 3] (RGB), got {list(rgb.shape)}")
    if rgb.dtype != np.uint8:
        raise InputError(f"frame must be uint8, got {rgb.dtype}")
    check_frame_size(rgb.shape[1], rgb.shape[0])
    return rgb


def check_frame_size(w: int, h: int) -> None:
    """Refuse frames the tracker cannot handle well (too small to hold a hand, or huge)."""
    if min(h, w) < MIN_FRAME_SIDE:
        raise InputError(
            f"frame {w}×{h} is too small: the tracker needs at least "
            f"{MIN_FRAME_SIDE}×{MIN_FRAME_SIDE} pixels"
        )
    if max(h, w) > MAX_FRAME_SIDE:
        raise InputError(
            f"frame {w}×{h} is too large: at most {MAX_FRAME_SIDE} pixels on a side are "
            "supported (scale the video down, e.g. to 1280×720)"
        )


@dataclass
class _Track:
    roi: Roi
    filter: OneEuroFilter
    from_detector: bool = True
    prev_roi: Roi | None = None  # the ROI of the frame before (None: seeded by the detector)
    presence: float = 1.0  # of the fit that produced ``roi``


@dataclass
class TrackerStats:
    frames: int = 0
    detector_runs: int = 0
    landmark_runs: int = 0
    precise_runs: int = 0  # landmark runs on the float-compute fallback model
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class HandTracker:
    """Tracks up to ``cfg.max_hands`` hands through a sequence of RGB frames."""

    def __init__(
        self,
        palm_model: TFLiteModel,
        landmark_model: TFLiteModel,
        cfg: TrackerConfig,
        precise_model: TFLiteModel | None = None,
    ):
        self.palm_model = palm_model
        self.landmark_model = landmark_model
        # float-compute landmark model for hard frames (fast turn, weak fit); None: never
        self.precise_model = precise_model
        self.cfg = cfg
        self._turn_limit = math.radians(cfg.precise_turn_deg)
        self._anchors = palm.generate_anchors(palm.INPUT_SIZE)
        self._tracks: list[_Track] = []
        self._index = 0
        self.stats = TrackerStats()
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------
    def reset(self) -> None:
        """Forget tracked hands (the next frame runs the palm detector)."""
        self._tracks = []

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.palm_model.close()
        self.landmark_model.close()
        if self.precise_model is not None:
            self.precise_model.close()
        log.debug("tracker closed after %d frames", self.stats.frames)

    def __enter__(self) -> HandTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._tracks)} tracked"
        return f"<HandTracker {self.landmark_model.name} {state}>"

    # -- stages -------------------------------------------------------------------
    def detect_palms(self, rgb: np.ndarray) -> list[palm.PalmDetection]:
        """Run the palm detector on a whole frame (letterboxed to 192×192)."""
        tensor, lb = palm.letterbox(rgb, palm.INPUT_SIZE)
        raw_boxes, raw_scores = self.palm_model.run(tensor)
        self.stats.detector_runs += 1
        return palm.postprocess(
            raw_boxes,
            raw_scores,
            self._anchors,
            lb,
            min_score=self.cfg.min_detection_score,
            iou_threshold=self.cfg.nms_iou,
        )

    def landmarks_in(self, rgb: np.ndarray, roi: Roi, precise: bool = False) -> lmk.LandmarkResult:
        """Run the landmark model on one ROI and map the result to image pixels.

        ``precise``: use the float-compute fallback model when the tracker has one.
        """
        model = self.landmark_model if not precise or self.precise_model is None else self.precise_model
        raw_lm, raw_presence, raw_hand, raw_world = model.run_filled(
            lambda buffer: lmk.fill_roi(rgb, roi, buffer, lmk.INPUT_SIZE)
        )
        self.stats.landmark_runs += 1
        if model is not self.landmark_model:
            self.stats.precise_runs += 1
        return lmk.unproject(
            raw_lm, raw_world, float(raw_presence.reshape(-1)[0]),
            float(raw_hand.reshape(-1)[0]), roi, roi.input_to_image(lmk.INPUT_SIZE),
        )  # fmt: skip

    # -- main entry ---------------------------------------------------------------
    def process(self, rgb: np.ndarray, t: float | None = None) -> list[HandObservation]:
        """Track hands in one RGB frame taken at ``t`` seconds; one observation per hand."""
        if self._closed:
            raise InputError("tracker is closed")
        rgb = check_frame(rgb)
        start = time.perf_counter()
        index = self._index
        self._index += 1
        t = float(index) / 30.0 if t is None else float(t)
        h, w = rgb.shape[:2]

        candidates = list(self._tracks)
        if len(candidates) < self.cfg.max_hands:
            for det in self.detect_palms(rgb):
                roi = det.to_roi()
                if any(roi.iou(tr.roi) > ROI_SIMILARITY for tr in candidates):
                    continue
                candidates.append(_Track(roi, self._new_filter(), from_detector=True))
                if len(candidates) >= self.cfg.max_hands:
                    break

        observations: list[HandObservation] = []
        kept: list[_Track] = []
        for tr in candidates:
            res = self.landmarks_in(rgb, tr.roi, precise=self._hard(tr))
            if res.presence < self.cfg.min_presence:
                continue
            raw = res.landmarks
            pts = raw
            if self.cfg.filter.enabled:
                xy = raw[:, :2]
                size = float((xy.max(axis=0) - xy.min(axis=0)).max())
                pts = tr.filter(raw, t, scale=max(size, 1.0))
            observations.append(
                HandObservation(
                    frame_index=index,
                    t=t,
                    image_size=(w, h),
                    detected=True,
                    presence=res.presence,
                    handedness=res.handedness,
                    handedness_score=res.handedness_score,
                    landmarks=pts,
                    world_landmarks=res.world,
                    from_detector=tr.from_detector,
                )
            )
            # The next ROI follows the raw (unsmoothed) landmarks, as MediaPipe does.
            kept.append(_Track(lmk.roi_from_landmarks(raw), tr.filter, False, tr.roi, res.presence))
        self._tracks = self._dedupe(kept)
        self.stats.frames += 1
        self.stats.seconds += time.perf_counter() - start
        return observations

    def process_one(self, rgb: np.ndarray, t: float | None = None) -> HandObservation:
        """Like :meth:`process` for one hand: the best hand, or a 'not detected' observation."""
        obs = self.process(rgb, t)
        if obs:
            return max(obs, key=lambda o: o.presence)
        h, w = rgb.shape[:2]
        return HandObservation(
            frame_index=self._index - 1,
            t=float(self._index - 1) / 30.0 if t is None else float(t),
            image_size=(w, h),
            detected=False,
        )

    def _hard(self, tr: _Track) -> bool:
        """Is this frame one for the precise model? The hand turned faster than the limit
        between the last two ROIs, or the last fit was weak (a hand entering, leaving or
        half hidden). int8 landmarks shrink a fast turn a little each frame; the ROI then
        lags, and on a fist seen end-on it can settle on a wrong fit (docs/TRACKER.md)."""
        if self.precise_model is None or tr.prev_roi is None:
            return False
        if tr.presence < self.cfg.precise_below_presence:
            return True
        return abs(normalize_radians(tr.roi.rotation - tr.prev_roi.rotation)) > self._turn_limit

    def _new_filter(self) -> OneEuroFilter:
        f = self.cfg.filter
        return OneEuroFilter(f.min_cutoff, f.beta, f.d_cutoff)

    @staticmethod
    def _dedupe(tracks: list[_Track]) -> list[_Track]:
        """Two ROIs that converged on the same hand: keep the first."""
        out: list[_Track] = []
        for tr in tracks:
            if all(tr.roi.iou(o.roi) <= ROI_SIMILARITY for o in out):
                out.append(tr)
        return out


def build_tracker(cfg: Config) -> HandTracker:
    """Load the configured palm and landmark models and build a tracker."""
    mc = cfg.models
    loaded: list[TFLiteModel] = []
    try:
        for name in cfg.tracker_model_names():  # palm, landmark[, precise fallback]
            loaded.append(load_model(mc.resolved_dir(), name, mc.threads))
    except BaseException:
        for model in loaded:
            model.close()
        raise
    precise = loaded[2] if len(loaded) > 2 else None
    return HandTracker(loaded[0], loaded[1], cfg.tracker, precise)
