"""One Euro filter for landmark arrays (Casiez, Roussel, Vogel, CHI 2012).

Vectorised over any array shape. The speed that opens the cutoff is measured in
*hand sizes per second* (the caller passes the current hand size in pixels), so the same
parameters behave alike for a near and a far hand — the role MediaPipe's
``LandmarksSmoothingCalculator`` gives to its object scale.
"""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass at ``cutoff`` Hz for a step of ``dt`` s:
    1 / (1 + tau / dt) with tau = 1 / (2 pi cutoff), written without the division by zero."""
    r = 2.0 * math.pi * dt * cutoff
    return r / (r + 1.0)


class OneEuroFilter:
    """Adaptive low-pass filter: smooth when still, little lag when moving.

    Args:
        min_cutoff: cutoff frequency (Hz) at zero speed; lower = smoother.
        beta: how fast the cutoff rises with speed (per hand-size/s).
        d_cutoff: cutoff (Hz) for the speed estimate.
    """

    def __init__(self, min_cutoff: float = 0.3, beta: float = 10.0, d_cutoff: float = 2.0) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """Filter sample ``x`` taken at time ``t`` (s); ``scale`` = hand size in the units of x."""
        x = np.asarray(x, dtype=np.float32)
        if self._x is None or self._t is None or t <= self._t:
            # first sample, or time did not advance (duplicate / clock jump back): restart
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        prev, dprev = self._x, self._dx
        assert dprev is not None
        dx = (x - prev) * np.float32(1.0 / (dt * max(scale, 1e-6)))
        dx_hat = dprev + np.float32(_alpha(self.d_cutoff, dt)) * (dx - dprev)
        a = _alpha(np.float32(self.min_cutoff) + np.float32(self.beta) * np.abs(dx_hat), dt)
        x_hat = prev + a * (x - prev)
        self._x, self._dx, self._t = x_hat, dx_hat, t
        return x_hat.copy()
