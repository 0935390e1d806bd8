"""Drawing observations onto frames (overlays for videos and the live page).

Reads only :class:`HandObservation` values; never touches models or state.
"""

from __future__ import annotations

import cv2
import numpy as np

from device.vision.types import HAND_CONNECTIONS, HandObservation

BONE_COLOUR = (0, 220, 255)  # RGB
JOINT_COLOUR = (255, 64, 64)
TEXT_COLOUR = (255, 255, 255)


def draw_observation(rgb: np.ndarray, obs: HandObservation, label: bool = True) -> np.ndarray:
    """Draw the skeleton of one observation on ``rgb`` in place and return it."""
    if not obs.detected or obs.landmarks is None:
        return rgb
    h, w = rgb.shape[:2]
    thick = max(1, round(min(h, w) / 240))
    pts = np.round(obs.landmarks[:, :2]).astype(np.int32)
    for a, b in HAND_CONNECTIONS:
        cv2.line(
            rgb, tuple(map(int, pts[a])), tuple(map(int, pts[b])), BONE_COLOUR, thick, cv2.LINE_AA
        )
    for p in pts:
        cv2.circle(rgb, (int(p[0]), int(p[1])), thick + 2, JOINT_COLOUR, -1, cv2.LINE_AA)
    if label and obs.handedness:
        x, y = int(pts[:, 0].min()), max(12, int(pts[:, 1].min()) - 8)
        text = f"{obs.handedness} {obs.presence:.2f}"
        cv2.putText(
            rgb,
            text,
            (x, y),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thick,
            TEXT_COLOUR,
            thick,
            cv2.LINE_AA,
        )
    return rgb


def draw_status(rgb: np.ndarray, text: str) -> np.ndarray:
    """Write a status line at the top-left of the frame (in place)."""
    h, w = rgb.shape[:2]
    scale = max(0.4, min(h, w) / 600)
    cv2.putText(
        rgb,
        text,
        (8, int(24 * scale) + 4),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (0, 0, 0),
        4,
        cv2.LINE_AA,
    )
    cv2.putText(
        rgb,
        text,
        (8, int(24 * scale) + 4),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        TEXT_COLOUR,
        1,
        cv2.LINE_AA,
    )
    return rgb
