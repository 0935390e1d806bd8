"""Quality gates of one trial: can it be judged at all?

A trial that fails a gate is **not scorable**; the kit says why and never invents a score.
Every failed gate is a :class:`QualityReason` with a stable ``code`` (for the store, the web
page and tests) and a sentence for a person. A rejection is data, not an exception.

Gates (thresholds in :class:`device.config.TrialConfig`):

==================  =========================================================================
code                fails when
==================  =========================================================================
``too_short``       fewer than 2 frames, or the recording spans 0 s
``no_hand``         no frame has a tracked hand
``hand_missing``    the hand is tracked on fewer than ``min_presence_share`` of the frames
``hand_too_small``  the median hand size (bounding-box long side) is below ``min_hand_px``
``hand_cut_by_edge`` more than ``max_edge_cut_share`` of tracked frames have a landmark within
                    ``edge_margin_px`` of the frame border (or outside it); with world
                    landmarks only the finger joints (MCP to tip) count
``wrong_side``      ``side`` is set and fewer than ``min_side_share`` of the frames with a
                    handedness label show that hand
``stopped_early``   the recording lasted less than ``min_duration_s`` (stopped before a
                    movement could be seen from start to end)
``camera_stalled``  frames stopped arriving for more than ``max_frame_gap_s`` during the
                    recording (a camera fault: never scored from what arrived)
``fingers_hidden``  with world landmarks: the palm was seen edge-on (its normal within
                    ``edge_on_normal`` of the image plane) in more than ``max_edge_on_share``
                    of the tracked frames, so the fingers hid each other
==================  =========================================================================

Handedness labels follow MediaPipe's convention: the model assumes a mirrored (selfie)
image. So on a mirrored view the label is the anatomical side; on an unmirrored camera
image it is the opposite one (:func:`anatomical_side`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from device.config import TrialConfig
from device.trial.types import Side, Trial

log = logging.getLogger(__name__)

FINGER_JOINTS = list(range(5, 21))  # index…pinky, MCP to tip


@dataclass(frozen=True)
class QualityReason:
    """One failed gate."""

    code: str
    message: str


@dataclass(frozen=True)
class QualityReport:
    """Outcome of the gates plus the measured values they were judged on."""

    reasons: tuple[QualityReason, ...]
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.reasons

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reasons": [asdict(r) for r in self.reasons],
            **self.metrics,
        }


def anatomical_side(label: str | None, mirrored: bool) -> Side | None:
    """The patient's hand side from a MediaPipe handedness label.

    MediaPipe names hands as if the image were a mirrored selfie view: on such a view the
    label is the anatomical side; on an unmirrored image it is the other one.
    """
    if label not in ("Left", "Right"):
        return None
    side: Side = "left" if label == "Left" else "right"
    if mirrored:
        return side
    return "right" if side == "left" else "left"


def hand_sizes(landmarks: np.ndarray) -> np.ndarray:
    """Per-frame hand size in px (longer side of the landmarks' bounding box) of tracked frames."""
    xy = landmarks[:, :, :2]
    return np.asarray((xy.max(axis=1) - xy.min(axis=1)).max(axis=1), dtype=np.float64)


def palm_facing(world: np.ndarray) -> np.ndarray:
    """Per frame |cos| of the angle between the palm's normal and the camera's view axis, from
    world landmarks [T, 21, 3] (camera-aligned axes): 1 palm (or back) to the camera, 0
    edge-on. NaN where there is no hand."""
    w = np.asarray(world, dtype=np.float64)
    n = np.cross(w[:, 5] - w[:, 0], w[:, 17] - w[:, 0])
    norm = np.linalg.norm(n, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.abs(n[:, 2]) / np.where(norm > 0, norm, np.nan))


def check_quality(trial: Trial, cfg: TrialConfig | None = None) -> QualityReport:
    """Run every gate on ``trial``; the report lists each failure with its reason."""
    cfg = cfg or TrialConfig()
    reasons: list[QualityReason] = []
    n = trial.num_frames
    det = trial.detected
    n_det = int(det.sum())
    share = n_det / n if n else 0.0
    side = trial.side if trial.side is not None else cfg.side
    metrics: dict[str, Any] = {
        "frames": n,
        "duration_s": round(trial.duration, 3),
        "presence_share": round(share, 3),
    }
    if n < 2 or trial.duration <= 0:
        reasons.append(
            QualityReason("too_short", f"the recording has {n} frame(s); a trial needs a movement")
        )
    if n >= 2 and 0 < trial.duration < cfg.min_duration_s:
        reasons.append(
            QualityReason(
                "stopped_early",
                f"the recording was stopped after {trial.duration:.1f} s, before the movement could "
                f"be seen from start to end (needs {cfg.min_duration_s:.1f} s): record again and "
                "let the recording run to its end",
            )
        )
    if n >= 2:
        gap = float(np.max(np.diff(trial.t)))
        metrics["max_frame_gap_s"] = round(gap, 3)
        if gap > cfg.max_frame_gap_s:
            at = float(trial.t[int(np.argmax(np.diff(trial.t)))])
            reasons.append(
                QualityReason(
                    "camera_stalled",
                    f"the camera stopped sending pictures for {gap:.1f} s during the recording "
                    f"(from {at:.1f} s): check the camera and record again",
                )
            )
    if n_det == 0:
        reasons.append(QualityReason("no_hand", "no hand was seen in the recording"))
        return QualityReport(tuple(reasons), metrics)
    if share < cfg.min_presence_share:
        reasons.append(
            QualityReason(
                "hand_missing",
                f"the hand was tracked in only {share:.0%} of the frames "
                f"(needs {cfg.min_presence_share:.0%}): keep the whole hand in view",
            )
        )
    lm = trial.landmarks[det]
    sizes = hand_sizes(lm)
    median_size = float(np.median(sizes))
    metrics["hand_size_px"] = round(median_size, 1)
    if median_size < cfg.min_hand_px:
        reasons.append(
            QualityReason(
                "hand_too_small",
                f"the hand is {median_size:.0f} px across (needs {cfg.min_hand_px:.0f} px): "
                "move closer to the camera",
            )
        )
    w, h = trial.image_size
    m = cfg.edge_margin_px
    # In the hand frame only the fingers must be in view (the item is about them: a wrist or
    # thumb base on the edge of a close-up does not hide a flexion); on image landmarks the
    # whole hand (the 2D measures use the wrist and the palm).
    xy = lm[:, FINGER_JOINTS, :2] if trial.has_world else lm[:, :, :2]
    cut = (
        (xy[..., 0] < m).any(axis=1)
        | (xy[..., 1] < m).any(axis=1)
        | (xy[..., 0] > w - 1 - m).any(axis=1)
        | (xy[..., 1] > h - 1 - m).any(axis=1)
    )
    cut_share = float(cut.mean())
    metrics["edge_cut_share"] = round(cut_share, 3)
    if cut_share > cfg.max_edge_cut_share:
        reasons.append(
            QualityReason(
                "hand_cut_by_edge",
                f"the hand touched the frame edge in {cut_share:.0%} of the tracked frames "
                f"(allowed {cfg.max_edge_cut_share:.0%}): centre the hand in the view",
            )
        )
    if trial.world is not None and trial.has_world:
        facing = palm_facing(trial.world)
        seen = facing[np.isfinite(facing)]
        edge_on = float((seen < cfg.edge_on_normal).mean()) if seen.size else 0.0
        metrics["edge_on_share"] = round(edge_on, 3)
        if edge_on > cfg.max_edge_on_share:
            reasons.append(
                QualityReason(
                    "fingers_hidden",
                    f"the hand was turned sideways to the camera for {edge_on:.0%} of the recording, "
                    "so the fingers could not be seen: turn the palm (or the back of the hand) "
                    "towards the camera and record again",
                )
            )
    sides = [anatomical_side(lab, trial.mirrored) for lab in trial.handedness]
    labelled = [s for s in sides if s is not None]
    if labelled:
        right_share = sum(s == "right" for s in labelled) / len(labelled)
        metrics["seen_side"] = "right" if right_share >= 0.5 else "left"
        metrics["seen_side_share"] = round(max(right_share, 1 - right_share), 3)
    if side is not None and labelled:
        side_share = sum(s == side for s in labelled) / len(labelled)
        metrics["side_share"] = round(side_share, 3)
        if side_share < cfg.min_side_share:
            other = "left" if side == "right" else "right"
            reasons.append(
                QualityReason(
                    "wrong_side",
                    f"the tracked hand looks like the {other} hand in {1 - side_share:.0%} of "
                    f"the frames, but the {side} side is being assessed",
                )
            )
    if reasons:
        log.info("trial failed quality gates: %s", ", ".join(r.code for r in reasons))
    return QualityReport(tuple(reasons), metrics)
