"""Live view plumbing: the latest-frame buffer, the stream cap and the MJPEG body.

* :class:`LiveFrames` keeps **only the newest** frame. ``put`` (tracker thread) swaps a
  reference under a short lock and never waits for a viewer; ``latest_jpeg`` (web
  threads) draws the skeleton on a copy and JPEG-encodes it once per frame, shared by all
  viewers, and at most ``max_encode_fps`` times a second however many viewers ask (a
  tracker faster than the stream would otherwise cost one encode per viewer per frame).
  A slow viewer therefore skips frames; it never queues them or slows the tracker.
* :class:`StreamLimiter` hands out at most N stream slots (and 2 per session); the view
  answers 503 without one.
* :class:`MjpegStream` is the ``multipart/x-mixed-replace`` body. Its ``close()`` (called by
  every WSGI server when the client goes away or the response ends) frees the slot, even
  when the body was never iterated.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator

import cv2
import numpy as np

from device.vision.draw import draw_observation, draw_status
from device.vision.types import HandObservation
from device.web.services import JpegFrame

log = logging.getLogger(__name__)

BOUNDARY = "frame"
JPEG_QUALITY = 75
WAIT_S = 1.0  # longest wait for a new frame before checking the stop flag again
MAX_ENCODE_FPS = 30.0  # JPEG encodes per second shared by all viewers (≥ web.stream_fps)


class LiveFrames:
    """The newest frame and observation; see the module doc."""

    def __init__(
        self,
        jpeg_quality: int = JPEG_QUALITY,
        max_encode_fps: float = MAX_ENCODE_FPS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._encode_lock = threading.Lock()
        self._seq = 0
        self._rgb: np.ndarray | None = None
        self._obs: HandObservation | None = None
        self._text: str | None = None
        self._cached: JpegFrame | None = None
        self._cached_at = float("-inf")
        self._min_interval = 1.0 / max_encode_fps
        self._clock = clock
        self.jpeg_quality = jpeg_quality
        self.encodes = 0  # JPEG encodes so far (the load benchmark and tests read it)

    @property
    def seq(self) -> int:
        """Frames put so far."""
        return self._seq

    def put(self, rgb: np.ndarray, obs: HandObservation | None = None, text: str | None = None) -> None:
        """Offer the newest frame (RGB uint8 [H, W, 3]; not modified afterwards by the caller)."""
        with self._cond:
            self._rgb, self._obs, self._text = rgb, obs, text
            self._seq += 1
            self._cond.notify_all()

    def latest_jpeg(self, newer_than: int = -1, timeout: float = 0.0) -> JpegFrame | None:
        """The newest frame as JPEG if newer than ``newer_than``, waiting up to ``timeout``."""
        with self._cond:
            if self._seq <= newer_than or self._rgb is None:
                self._cond.wait_for(lambda: self._seq > newer_than and self._rgb is not None, timeout)
            if self._seq <= newer_than or self._rgb is None:
                return None
            seq, rgb, obs, text = self._seq, self._rgb, self._obs, self._text
        while True:
            with self._encode_lock:
                cached = self._cached
                wait = self._min_interval - (self._clock() - self._cached_at)
                if cached is not None and (cached.seq >= seq or (wait > 0 and cached.seq > newer_than)):
                    return cached  # shared: encoded for another viewer a moment ago
                if cached is None or wait <= 0:
                    with self._cond:  # the newest frame now (it may have moved on while we waited)
                        seq, rgb, obs, text = self._seq, self._rgb, self._obs, self._text
                    assert rgb is not None
                    frame = JpegFrame(seq, self._encode(rgb, obs, text))
                    self._cached, self._cached_at = frame, self._clock()
                    self.encodes += 1
                    return frame
            # This viewer already has the shared frame and it is fresh: the next encode waits.
            if timeout <= 0:
                return None
            pause = min(wait, timeout)
            time.sleep(pause)
            timeout -= pause

    def _encode(self, rgb: np.ndarray, obs: HandObservation | None, text: str | None) -> bytes:
        img = np.ascontiguousarray(rgb).copy()
        if obs is not None:
            draw_observation(img, obs, label=False)
        if text:
            draw_status(img, text)
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
        )
        if not ok:  # pragma: no cover - cv2 encodes any uint8 image
            raise ValueError("JPEG encoding failed")
        return bytes(buf)


STREAMS_PER_SESSION = 2  # live views one login may hold at once (two tabs)


class StreamLimiter:
    """At most ``limit`` concurrent streams, and at most ``per_key`` for one key (a session).

    A slot is held until the stream's body is closed: when the viewer leaves, or when the
    server drops an answer the viewer stopped reading (``web.request_timeout_s``)."""

    def __init__(self, limit: int, per_key: int = STREAMS_PER_SESSION) -> None:
        self.limit = limit
        self.per_key = per_key
        self._lock = threading.Lock()
        self._active = 0
        self._by_key: dict[str, int] = {}

    @property
    def active(self) -> int:
        return self._active

    def held_by(self, key: str) -> int:
        with self._lock:
            return self._by_key.get(key, 0)

    def acquire(self, key: str | None = None) -> Callable[[], None] | None:
        """A release function for a new slot, or None when all slots (or ``key``'s) are taken."""
        with self._lock:
            if self._active >= self.limit:
                return None
            if key is not None:
                if self._by_key.get(key, 0) >= self.per_key:
                    return None
                self._by_key[key] = self._by_key.get(key, 0) + 1
            self._active += 1
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if released.is_set():
                    return
                released.set()
                self._active -= 1
                if key is not None:
                    left = self._by_key.get(key, 1) - 1
                    if left > 0:
                        self._by_key[key] = left
                    else:
                        self._by_key.pop(key, None)

        return release


class MjpegStream:
    """Iterable MJPEG body that sends the newest frame at most ``fps`` times a second."""

    def __init__(
        self,
        latest: Callable[[int, float], JpegFrame | None],
        release: Callable[[], None],
        stop: threading.Event,
        fps: float,
    ) -> None:
        self._latest = latest
        self._release = release
        self._stop = stop
        self._period = 1.0 / fps
        self._gen = self._frames()

    def _frames(self) -> Generator[bytes, None, None]:
        seq = -1
        while not self._stop.is_set():
            frame = self._latest(seq, WAIT_S)
            if frame is None:
                continue
            seq = frame.seq
            head = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.data)}\r\n\r\n"
            ).encode("ascii")
            yield head + frame.data + b"\r\n"
            self._stop.wait(self._period)

    def __iter__(self) -> MjpegStream:
        return self

    def __next__(self) -> bytes:
        return next(self._gen)

    def close(self) -> None:
        """End the stream and free its slot (idempotent)."""
        try:
            self._gen.close()
        finally:
            self._release()
