"""The buffered trial: what the recorder hands to the scorer.

A :class:`Trial` is a plain array bundle. Frames where no hand was tracked hold NaN
landmarks; gaps are handled by the features, not here. Besides the image landmarks a trial
may carry the landmark model's **world landmarks** (metres, in the hand's own frame) when
its source had them; a trial from a 2D tracker has none (``world`` None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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
        world: float32 [T, 21, 3] world landmarks in metres (hand-centred, as the landmark
            model outputs them), or None when the source has none at all. Per frame all
            finite or all NaN: NaN where no hand, and allowed NaN on a tracked frame whose
            source lacked world landmarks; on a frame without image landmarks they are
            dropped (set to NaN): the image landmarks say which frames were tracked.
    """

    landmarks: np.ndarray = field(repr=False)
    t: np.ndarray = field(repr=False)
    presence: np.ndarray = field(repr=False)
    handedness: tuple[str | None, ...] = field(repr=False)
    image_size: tuple[int, int]
    side: Side | None = None
    mirrored: bool = False
    has_z: bool = True
    world: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        lm = self.landmarks
        if not isinstance(lm, np.ndarray) or lm.ndim != 3 or lm.shape[1:] != (NUM_LANDMARKS, 3):
            shape = getattr(lm, "shape", type(lm).__name__)
            raise InputError(f"trial landmarks must have shape [T, 21, 3], got {shape}")
        if not isinstance(self.t, np.ndarray) or not isinstance(self.presence, np.ndarray):
            raise InputError("trial t and presence must be numpy arrays")
        n = lm.shape[0]
        if self.t.shape != (n,) or self.presence.shape != (n,) or len(self.handedness) != n:
            raise InputError(
                f"trial arrays disagree in length: landmarks {n}, t {self.t.shape}, "
                f"presence {self.presence.shape}, handedness {len(self.handedness)}"
            )
        if n == 0:
            raise InputError("a trial needs at least one frame; got none")
        if self.side not in (None, "left", "right"):
            raise InputError(f"trial side must be 'left', 'right' or None, got {self.side!r}")
        try:
            lm32 = np.asarray(lm, dtype=np.float32)
            t64 = np.asarray(self.t, dtype=np.float64)
            pres = np.asarray(self.presence, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"trial arrays must be numeric: {exc}") from None
        _validate_values(lm32, t64, pres, self.has_z)
        if self.world is not None:
            object.__setattr__(self, "world", _validated_world(self.world, lm32))
        # Coerce once here so every consumer can rely on the dtypes (frozen: bypass setattr).
        object.__setattr__(self, "landmarks", lm32)
        object.__setattr__(self, "t", t64)
        object.__setattr__(self, "presence", pres)
        object.__setattr__(self, "handedness", tuple(self.handedness))

    @property
    def detected(self) -> np.ndarray:
        """bool [T]: frames with a tracked hand (landmark rows that are not NaN)."""
        return ~np.isnan(self.landmarks[:, :, :2]).any(axis=(1, 2))

    @property
    def fps(self) -> float:
        """Mean frame rate (0 for a single frame)."""
        return (self.num_frames - 1) / self.duration if self.duration > 0 else 0.0

    @property
    def has_world(self) -> bool:
        """True when at least one frame carries world landmarks."""
        return self.world is not None and bool(np.isfinite(self.world[:, 0, 0]).any())

    def with_side(self, side: Side | None) -> Trial:
        """The same trial assessed for another side."""
        return replace(self, side=side)

    def frames(self, start: int, stop: int | None = None) -> Trial:
        """Frames ``start:stop`` as a trial of their own, its time starting at 0."""
        sel = slice(start, stop)
        t = self.t[sel]
        if len(t) == 0:
            raise InputError(f"frames {start}:{stop} of a {self.num_frames}-frame trial are none")
        return replace(
            self,
            landmarks=self.landmarks[sel],
            t=t - t[0],
            presence=self.presence[sel],
            handedness=self.handedness[sel],
            world=None if self.world is None else self.world[sel],
        )

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
        """Build a trial from one observation per frame (the tracked hand or a miss).

        ``world`` holds each tracked frame's ``world_landmarks`` (a frame whose world output
        is missing or not finite is NaN there); it is None when no frame had any.
        """
        if not observations:
            raise InputError("a trial needs at least one frame; got none")
        n = len(observations)
        lm = np.full((n, NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
        world = np.full((n, NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
        any_world = False
        pres = np.zeros(n, dtype=np.float32)
        hand: list[str | None] = []
        for i, ob in enumerate(observations):
            if ob.detected and ob.landmarks is not None:
                lm[i] = ob.landmarks
                pres[i] = ob.presence
                w = ob.world_landmarks
                if w is not None and w.shape == (NUM_LANDMARKS, 3) and np.isfinite(w).all():
                    world[i] = w
                    any_world = True
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
            world=world if any_world else None,
        )


def _validated_world(world: object, lm: np.ndarray) -> np.ndarray:
    """``world`` as float32 [T, 21, 3] after the checks the class doc lists."""
    n = lm.shape[0]
    if not isinstance(world, np.ndarray) or world.shape != (n, NUM_LANDMARKS, 3):
        shape = getattr(world, "shape", type(world).__name__)
        raise InputError(
            f"trial world landmarks must have shape [{n}, 21, 3] (one row per frame), got {shape}"
        )
    try:
        w = np.asarray(world, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"trial world landmarks must be numeric: {exc}") from None
    if np.isinf(w).any():
        frame = int(np.argwhere(np.isinf(w))[0, 0])
        raise InputError(f"trial world landmarks contain inf (first at frame {frame})")
    nan = np.isnan(w)
    partial = nan.any(axis=(1, 2)) & ~nan.all(axis=(1, 2))
    if partial.any():
        frame = int(np.flatnonzero(partial)[0])
        raise InputError(
            f"trial frame {frame} has NaN in some world landmarks but not all: a frame's world "
            "landmarks are either all given (21 finite points) or missing (all NaN)"
        )
    # A frame is tracked or missing by its image landmarks: world landmarks on a frame whose
    # image landmarks were dropped (a frame marked missing) go with them.
    orphan = ~nan.all(axis=(1, 2)) & np.isnan(lm[:, :, :2]).any(axis=(1, 2))
    if orphan.any():
        w = w.copy()
        w[orphan] = np.nan
    return w


def _validate_values(lm: np.ndarray, t: np.ndarray, presence: np.ndarray, has_z: bool) -> None:
    """Reject values no tracker produces: inf, half-missing frames, time going backwards."""
    if np.isinf(lm).any():
        frame = int(np.argwhere(np.isinf(lm))[0, 0])
        raise InputError(f"trial landmarks contain inf (first at frame {frame})")
    xy_nan = np.isnan(lm[:, :, :2])
    partial = xy_nan.any(axis=(1, 2)) & ~xy_nan.all(axis=(1, 2))
    if partial.any():
        frame = int(np.flatnonzero(partial)[0])
        raise InputError(
            f"trial frame {frame} has NaN in some landmarks but not all: a frame is either "
            "tracked (21 finite points) or missing (all NaN)"
        )
    if has_z:
        z_nan = np.isnan(lm[:, :, 2]) & ~xy_nan.all(axis=2)
        if z_nan.any():
            frame = int(np.argwhere(z_nan)[0, 0])
            raise InputError(f"trial frame {frame} has NaN z on a tracked hand; use has_z=False for 2D input")
    if not np.isfinite(t).all():
        raise InputError("trial timestamps must be finite")
    if t.size > 1 and (np.diff(t) < 0).any():
        frame = int(np.flatnonzero(np.diff(t) < 0)[0]) + 1
        raise InputError(f"trial timestamps go backwards at frame {frame}")
    if not np.isfinite(presence).all():
        raise InputError("trial presence scores must be finite")
