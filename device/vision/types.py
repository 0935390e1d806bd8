"""Data types shared by the tracker and everything above it.

Coordinates: ``landmarks`` are in **pixels of the input frame** (x right, y down) with a
relative depth ``z`` on the same pixel-like scale as x (wrist ≈ 0, negative towards the
camera), MediaPipe joint order. ``world_landmarks`` are metres, hand-centred.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NUM_LANDMARKS = 21

JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip

# Skeleton edges (pairs of joint indices) for drawing.
HAND_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (5, 9), (9, 10), (10, 11), (11, 12),
    (9, 13), (13, 14), (14, 15), (15, 16),
    (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)  # fmt: skip


@dataclass(frozen=True)
class HandObservation:
    """What the tracker saw of one hand in one frame.

    Attributes:
        frame_index: 0-based index of the frame in its source.
        t: timestamp of the frame in seconds (source clock).
        image_size: (width, height) of the frame in pixels.
        detected: True when a hand was tracked in this frame.
        presence: hand-presence score of the landmark model in [0, 1] (0 when not detected).
        handedness: "Left" or "Right" as the landmark model names it (MediaPipe convention:
            the model assumes a mirrored, selfie-view image), or None.
        handedness_score: probability of ``handedness`` in [0.5, 1].
        landmarks: float32 [21, 3] (x px, y px, z relative px), or None when not detected.
        world_landmarks: float32 [21, 3] metres, or None.
        from_detector: True when this frame's ROI came from the palm detector (not tracking).
    """

    frame_index: int
    t: float
    image_size: tuple[int, int]
    detected: bool
    presence: float = 0.0
    handedness: str | None = None
    handedness_score: float = 0.0
    landmarks: np.ndarray | None = field(default=None, repr=False)
    world_landmarks: np.ndarray | None = field(default=None, repr=False)
    from_detector: bool = False

    def hand_size(self) -> float:
        """Longer side of the landmarks' bounding box in pixels (0 when not detected)."""
        if self.landmarks is None:
            return 0.0
        xy = self.landmarks[:, :2]
        return float(np.max(xy.max(axis=0) - xy.min(axis=0)))
