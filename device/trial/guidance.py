"""Live guidance: is the hand in front of the camera ready to be recorded, and if not, what to fix.

The recorder feeds every tracker observation to a :class:`GuidanceWindow`; it judges the
frames of the last ``GUIDANCE_WINDOW_S`` seconds (a short window, so one missed frame does
not flip the answer) with the **quality gates' own thresholds** (:class:`TrialConfig`), so a
hand the guidance calls ready is one the gates would accept:

=====================  ====================================================================
code                   when (over the window's frames)
=====================  ====================================================================
``no_hand``            fewer than half of the frames have a tracked hand (or no frames)
``wrong_side``         the side being tested is known and fewer than ``min_side_share`` of
                       the labelled frames show that hand
``hand_cut_by_edge``   more than ``max_edge_cut_share`` of the tracked frames touch the
                       frame border (the gate's rule: the finger knuckles with world
                       landmarks, else every landmark)
``hand_too_small``     the median hand size is below ``min_hand_px`` × ``SIZE_MARGIN`` (the
                       open hand must be a quarter above the gate's minimum: a fist is smaller)
``fingers_hidden``     with world landmarks: the palm is edge-on to the camera in more than
                       ``max_edge_on_share`` of the tracked frames
``ready``              none of the above
=====================  ====================================================================

The order above is the order they are reported in: one thing to fix at a time. Pure apart
from the window's deque; no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from device.config import TrialConfig
from device.trial.quality import FINGER_KNUCKLES, anatomical_side, palm_facing
from device.trial.types import Side
from device.vision.types import HandObservation

GUIDANCE_WINDOW_S = 0.5  # the guidance judges the frames of this last stretch
# ... or, when a slow camera left none in it, the newest frame if it is younger than this
# (older: the camera has stopped, and no hand is in view)
LATEST_FRAME_S = 1.0
SIZE_MARGIN = 1.25  # the open hand before a recording: this much above the gate's min_hand_px
READY = "ready"

# code → the sentence the page shows (the spoken ones, in English and German, are in
# device/panel/voice.py under the same codes)
MESSAGES: dict[str, str] = {
    "no_hand": "No hand in view: hold the open hand in front of the camera.",
    "wrong_side": "That is the {seen} hand: show the {side} hand.",
    "hand_cut_by_edge": "Part of the hand is outside the picture: move it to the middle.",
    "hand_too_small": "The hand is too far away: move it closer to the camera.",
    "fingers_hidden": "The hand is turned sideways: turn the palm towards the camera.",
    READY: "Hand in view: keep it open and still.",
}
# code → why a countdown that waited in vain did not start the recording (the reason stored
# with the rejected trial and shown on the page)
NOT_STARTED: dict[str, str] = {
    "no_hand": "no hand in view: hold the open hand in front of the camera and start again",
    "wrong_side": "the {seen} hand was in view, but the {side} hand is being tested: "
    "show the {side} hand and start again",
    "hand_cut_by_edge": "the hand was partly outside the picture: move it to the middle and start again",
    "hand_too_small": "the hand was too far from the camera: move it closer and start again",
    "fingers_hidden": "the hand was turned sideways: turn the palm towards the camera and start again",
}


@dataclass(frozen=True)
class Guidance:
    """What to fix (``code``, one of the module doc's) and the sentence for a person."""

    code: str
    message: str
    seen_side: Side | None = None  # the side of the hand in view, when known

    @property
    def ready(self) -> bool:
        return self.code == READY

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    def not_started(self, waited_s: float) -> str:
        """The reason a recording did not start after waiting ``waited_s`` for this."""
        text = NOT_STARTED.get(self.code, self.message)
        side = self._side_words()
        return f"{text.format(**side)} (the recording did not start; waited {waited_s:.0f} s)"

    def _side_words(self) -> dict[str, str]:
        seen = self.seen_side or "other"
        other = {"left": "right", "right": "left"}.get(seen, "other")
        return {"seen": seen, "side": other}


@dataclass(frozen=True)
class FrameCheck:
    """One observation, reduced to what the guidance judges (computed once per frame)."""

    at: float  # recorder clock
    detected: bool
    side: Side | None = None
    size_px: float = 0.0
    cut: bool = False
    edge_on: bool | None = None  # None without world landmarks


def check_frame(obs: HandObservation, at: float, cfg: TrialConfig, mirrored: bool) -> FrameCheck:
    """Reduce one observation (see :class:`FrameCheck`)."""
    if not obs.detected or obs.landmarks is None:
        return FrameCheck(at, False)
    lm = np.asarray(obs.landmarks, dtype=np.float64)
    if not np.isfinite(lm[:, :2]).all():
        return FrameCheck(at, False)
    world = obs.world_landmarks
    has_world = world is not None and np.isfinite(world).all()
    xy = lm[FINGER_KNUCKLES, :2] if has_world else lm[:, :2]
    w, h = obs.image_size
    m = cfg.edge_margin_px
    cut = bool((xy < m).any() or (xy[:, 0] > w - 1 - m).any() or (xy[:, 1] > h - 1 - m).any())
    edge_on = None
    if has_world and world is not None:
        facing = float(palm_facing(np.asarray(world)[None])[0])
        edge_on = bool(np.isfinite(facing) and facing < cfg.edge_on_normal)
    return FrameCheck(
        at,
        True,
        side=anatomical_side(obs.handedness, mirrored),
        size_px=obs.hand_size(),
        cut=cut,
        edge_on=edge_on,
    )


def judge(frames: Iterable[FrameCheck], side: Side | None, cfg: TrialConfig) -> Guidance:
    """The guidance for these frames (see the module doc); ``side`` is the hand being tested."""
    frames = list(frames)
    hands = [f for f in frames if f.detected]
    if not frames or len(hands) * 2 < len(frames) or not hands:
        return Guidance("no_hand", MESSAGES["no_hand"])
    labelled = [f.side for f in hands if f.side is not None]
    seen: Side | None = None
    if labelled:
        seen = "right" if sum(s == "right" for s in labelled) * 2 >= len(labelled) else "left"
    if side is not None and labelled:
        share = sum(s == side for s in labelled) / len(labelled)
        if share < cfg.min_side_share:
            other: Side = "left" if side == "right" else "right"
            text = MESSAGES["wrong_side"].format(seen=other, side=side)
            return Guidance("wrong_side", text, other)
    if sum(f.cut for f in hands) / len(hands) > cfg.max_edge_cut_share:
        return Guidance("hand_cut_by_edge", MESSAGES["hand_cut_by_edge"], seen)
    if float(np.median([f.size_px for f in hands])) < cfg.min_hand_px * SIZE_MARGIN:
        return Guidance("hand_too_small", MESSAGES["hand_too_small"], seen)
    facing = [f.edge_on for f in hands if f.edge_on is not None]
    if facing and sum(facing) / len(facing) > cfg.max_edge_on_share:
        return Guidance("fingers_hidden", MESSAGES["fingers_hidden"], seen)
    return Guidance(READY, MESSAGES[READY], seen)


class GuidanceWindow:
    """The last ``window_s`` seconds of :class:`FrameCheck` s (not thread-safe: the recorder
    holds its lock around every call)."""

    def __init__(
        self, cfg: TrialConfig, *, mirrored: bool = False, window_s: float = GUIDANCE_WINDOW_S
    ) -> None:
        self.cfg = cfg
        self.mirrored = mirrored
        self.window_s = window_s
        self._frames: deque[FrameCheck] = deque()

    def add(self, obs: HandObservation, at: float) -> FrameCheck:
        check = check_frame(obs, at, self.cfg, self.mirrored)
        self._frames.append(check)
        self._trim(at)
        return check

    def _trim(self, now: float) -> None:
        # the newest frame stays (see LATEST_FRAME_S)
        while len(self._frames) > 1 and now - self._frames[0].at > self.window_s:
            self._frames.popleft()

    def judge(self, side: Side | None, now: float) -> Guidance:
        """The guidance now: the window's frames, else the newest one if it is recent (a
        slow camera); a camera that stopped sending shows no hand."""
        self._trim(now)
        frames = [f for f in self._frames if now - f.at <= self.window_s]
        if not frames and self._frames and now - self._frames[-1].at <= LATEST_FRAME_S:
            frames = [self._frames[-1]]
        return judge(frames, side, self.cfg)

    def __len__(self) -> int:
        return len(self._frames)
