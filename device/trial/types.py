"""The buffered trial: what the recorder hands to the scorer.

A :class:`Trial` is a plain array bundle. Frames where no hand was tracked hold NaN
landmarks; gaps are handled by the features, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from device.errors import InputError
from device.vision.types import NUM_LANDMARKS, HandObservation

Side = Literal["left", "right"]


@dataclass(frozen=True)
class Trial:
    """Landmarks of one recording.

    Attributes:
        landmarks: float32 [T, 21, 3] pixels (x, y, relative z); NaN rows where no hand.
            When ``has_z`` is False the z column is NaN (2D keypoints from another tracker).
        t: float64 [T] seconds from the start of the recording, non-decreasing.
        presence: float32 [T] hand-presence score (0 where no hand).
        handedness: per frame "Left"/"Right" as the tracker named it (MediaPipe convention) or None.
        image_size: (width, height) of the frames in pixels.
        side: the affected side being assessed ("left"/"right"), or None if not set.
        mirrored: True when the frames were a mirrored (selfie) view.
        has_z: whether the z coordinate is meaningful.
    """

    landmarks: np.ndarray = field(repr=False)
    t: np.ndarray = field(repr=False)
    presence: np.ndarray = field(repr=False)
    handedness: tuple[str | None, ...] = field(repr=False)
    image_size: tuple[int, int]
    side: Side | None = None
    mirrored: bool = False
    has_z: bool = True

    def __post_init__(self) -> None:
        lm = self.landmarks
        if not isinstance(lm, np.ndarray) or lm.ndim != 3 or lm.shape[1:] != (NUM_LANDMARKS, 3):
            shape = getattr(lm, "shape", type(lm).__name__)
            raise InputError(f"trial landmarks must have shape [T, 21, 3], got {shape}")
        n = lm.shape[0]
        if self.t.shape != (n,) or self.presence.shape != (n,) or len(self.handedness) != n:
            raise InputError(
                f"trial arrays disagree in length: landmarks {n}, t {self.t.shape}, "
                f"presence {self.presence.shape}, handedness {len(self.handedness)}"
            )
        if self.side not in (None, "left", "right"):
            raise InputError(f"trial side must be 'left', 'right' or None, got {self.side!r}")

    @property
    def num_frames(self) -> int:
        return int(self.landmarks.shape[0])

    @property
    def duration(self) -> float:
        return float(self.t[-1] - self.t[0]) if self.num_frames > 1 else 0.0

    @classmethod
    def from_observations(
        cls,
        observations: Sequence[HandObservation],
        *,
        side: Side | None = None,
        mirrored: bool = False,
    ) -> Trial:
        """Build a trial from one observation per frame (the tracked hand or a miss)."""
        if not observations:
            raise InputError("a trial needs at least one frame; got none")
        n = len(observations)
        lm = np.full((n, NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
        pres = np.zeros(n, dtype=np.float32)
        hand: list[str | None] = []
        for i, ob in enumerate(observations):
            if ob.detected and ob.landmarks is not None:
                lm[i] = ob.landmarks
                pres[i] = ob.presence
            hand.append(ob.handedness if ob.detected else None)
        t = np.array([ob.t for ob in observations], dtype=np.float64)
        t = t - t[0]
        return cls(
            landmarks=lm,
            t=t,
            presence=pres,
            handedness=tuple(hand),
            image_size=observations[0].image_size,
            side=side,
            mirrored=mirrored,
        )
