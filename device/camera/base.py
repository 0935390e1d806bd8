"""The camera interface: :class:`Frame`, the :class:`FrameSource` protocol and a base class.

Contract of every backend (what the watchdog and the tracker rely on):

* ``open()`` acquires the device and starts streaming; it raises :class:`CameraError` with a
  message naming the device when that fails. Opening an open source is a no-op.
* ``read(timeout)`` returns the next :class:`Frame`, or **None when no frame arrived within
  ``timeout`` seconds** (a stall is not an error: the watchdog decides what a stall means).
  It raises :class:`CameraError` when the device failed or the source is not open, and
  :class:`EndOfStream` (a ``CameraError``) when a finite source (a video file played once)
  has no more frames. ``timeout=None`` waits as long as the backend allows.
* ``close()`` releases the device; it is idempotent and a closed source can be opened again
  (the watchdog restarts a stalled camera by closing and reopening it).
* Every source is a context manager (``with source: ...`` opens and closes).

Frames are always **RGB** ``uint8`` arrays of shape ``[H, W, 3]``; ``t`` is seconds on the
source's own clock (monotonic for cameras, media time for files) and ``index`` counts frames
delivered since the source object was created.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

import numpy as np

from device.errors import CameraError

log = logging.getLogger(__name__)


class EndOfStream(CameraError):
    """A finite source (a video file played once) has delivered its last frame."""


@dataclass(frozen=True)
class Frame:
    """One camera frame.

    Attributes:
        rgb: ``uint8`` array ``[H, W, 3]`` in RGB channel order.
        t: capture time in seconds (source clock; non-decreasing).
        index: 0-based count of frames this source object has delivered.
    """

    rgb: np.ndarray = field(repr=False)
    t: float
    index: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


@runtime_checkable
class FrameSource(Protocol):
    """What the tracker loop and the watchdog need from a camera (see the module doc)."""

    name: str

    @property
    def is_open(self) -> bool: ...

    def open(self) -> None: ...

    def read(self, timeout: float | None = None) -> Frame | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BaseSource:
    """Template for backends: public methods take the lock and check state, then call hooks.

    A backend overrides ``_open`` (acquire and start), ``_read(timeout)`` (one frame as an
    RGB array and its time, or None on timeout) and ``_close`` (release; must not raise for
    a half-open device). The base class numbers frames, validates them and logs one line
    per open and close.
    """

    name: str = "camera"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._open = False
        self._index = 0

    # -- hooks ---------------------------------------------------------------------------
    def _do_open(self) -> None:
        raise NotImplementedError

    def _do_read(self, timeout: float | None) -> tuple[np.ndarray, float] | None:
        raise NotImplementedError

    def _do_close(self) -> None:
        raise NotImplementedError

    # -- public API ----------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        with self._lock:
            if self._open:
                return
            try:
                self._do_open()
            except CameraError:
                self._safe_close()
                raise
            except Exception as exc:
                self._safe_close()
                raise CameraError(f"cannot open {self.name}: {exc}") from exc
            self._open = True
            log.info("opened %s", self.name)

    def read(self, timeout: float | None = None) -> Frame | None:
        with self._lock:
            if not self._open:
                raise CameraError(f"{self.name} is not open")
            try:
                got = self._do_read(timeout)
            except CameraError:
                raise
            except Exception as exc:
                raise CameraError(f"{self.name} failed to deliver a frame: {exc}") from exc
            if got is None:
                return None
            rgb, t = got
            if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
                raise CameraError(
                    f"{self.name} delivered a {rgb.dtype} array of shape {rgb.shape}; "
                    "expected uint8 [H, W, 3]"
                )
            frame = Frame(rgb=rgb, t=float(t), index=self._index)
            self._index += 1
            return frame

    def close(self) -> None:
        with self._lock:
            if not self._open:
                return
            self._open = False
            self._safe_close()
            log.info("closed %s", self.name)

    def _safe_close(self) -> None:
        try:
            self._do_close()
        except Exception:  # closing must not mask the reason we are closing
            log.exception("error while closing %s", self.name)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self._open else "closed"
        return f"<{type(self).__name__} {self.name} {state} frames={self._index}>"
