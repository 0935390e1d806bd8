"""Synthetic frames for tests and demos, scriptable to stall or fail (like gpiozero's MockPin).

The source draws a moving bright square on a dark gradient (or whatever ``draw(index)``
returns). Tests script faults instead of sleeping:

* :meth:`SyntheticSource.stall` — reads return None (after waiting up to their timeout, or
  until :meth:`resume`) until :meth:`resume` is called;
* :meth:`fail_reads` / :meth:`fail_opens` — the next *n* reads / opens raise CameraError;
* ``max_frames`` — after that many frames a read raises :class:`EndOfStream`.

``calls`` records ``"open"``, ``"read"``, ``"close"`` so tests assert on history. The
frame time is ``index / fps`` (deterministic); ``paced=True`` additionally waits for the
frame's due time on the wall clock, for a demo that should look like a camera.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from device.camera.base import BaseSource, EndOfStream
from device.errors import CameraError


def default_pattern(index: int, width: int, height: int) -> np.ndarray:
    """A dark horizontal gradient with a bright square that moves one step per frame."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[..., 2] = np.linspace(0, 80, width, dtype=np.uint8)[None, :]
    side = max(4, min(width, height) // 6)
    x = (index * 4) % max(1, width - side)
    y = (height - side) // 2
    img[y : y + side, x : x + side] = 255
    return img


class SyntheticSource(BaseSource):
    """Generated frames; see the module doc for the scripting API."""

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        *,
        paced: bool = False,
        max_frames: int | None = None,
        draw: Callable[[int], np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        if width <= 0 or height <= 0 or fps <= 0:
            raise CameraError(f"synthetic source needs positive size and fps, got {width}x{height}@{fps}")
        self.name = f"synthetic {width}x{height}@{fps:g}"
        self.width, self.height, self.fps = width, height, fps
        self.paced = paced
        self.max_frames = max_frames
        self._draw = draw
        self.calls: list[str] = []
        self._running = threading.Event()  # cleared while stalled
        self._running.set()
        self._closing = threading.Event()
        self._fail_reads = 0
        self._fail_opens = 0
        self._generated = 0
        self._t0 = 0.0

    # -- scripting -----------------------------------------------------------------------
    def stall(self) -> None:
        """From now on reads deliver nothing (return None) until :meth:`resume`."""
        self._running.clear()

    def resume(self) -> None:
        """End a stall; a read waiting in the stall gets its frame."""
        self._running.set()

    @property
    def stalled(self) -> bool:
        return not self._running.is_set()

    def fail_reads(self, n: int = 1) -> None:
        """Make the next ``n`` reads raise CameraError (a device that broke)."""
        self._fail_reads = n

    def fail_opens(self, n: int = 1) -> None:
        """Make the next ``n`` opens raise CameraError (a device that is gone)."""
        self._fail_opens = n

    # -- hooks ---------------------------------------------------------------------------
    def _do_open(self) -> None:
        self.calls.append("open")
        if self._fail_opens > 0:
            self._fail_opens -= 1
            raise CameraError(f"{self.name}: scripted open failure")
        self._closing.clear()
        self._t0 = time.monotonic() - self._generated / self.fps

    def _do_read(self, timeout: float | None) -> tuple[np.ndarray, float] | None:
        self.calls.append("read")
        if self._fail_reads > 0:
            self._fail_reads -= 1
            raise CameraError(f"{self.name}: scripted read failure")
        if not self._running.wait(timeout):
            return None
        if self.max_frames is not None and self._generated >= self.max_frames:
            raise EndOfStream(f"{self.name}: end after {self.max_frames} frames")
        n = self._generated
        t = n / self.fps
        if self.paced:
            delay = self._t0 + t - time.monotonic()
            if delay > 0 and self._closing.wait(delay):
                return None
        img = self._draw(n) if self._draw else default_pattern(n, self.width, self.height)
        self._generated += 1
        return img, t

    def _do_close(self) -> None:
        self.calls.append("close")
        self._closing.set()
