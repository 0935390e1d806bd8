"""What the LED shows in each state: pure data, no GPIO.

A :class:`Pattern` is a list of steps ``(on, seconds)`` played in order and repeated; a step
with ``seconds=None`` holds for as long as the state lasts. Times are multiplied by
``panel.blink_unit_s``. A single LED plays the rhythm; an RGB LED plays the same rhythm in
the state's colour, so both read the same.

=============  ===================================  =================
state          single LED                            RGB colour
=============  ===================================  =================
idle           short blink every 3 s (heartbeat)    blue
countdown      2 Hz blink                            yellow
recording      steady on                             white
scoring        fast flicker                          cyan
result         *score* short blinks, pause;          red / yellow /
               score 0: one long 1.5 s flash         green for 0/1/2
not_scorable   two long flashes, pause               magenta
cancelled      one short flash, then dark until     yellow
               idle (the countdown's blink stops)
error          three fast blinks, pause              red
camera_lost    two fast blinks, pause                red
safe           off (shutdown-safe idle)              off
=============  ===================================  =================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

Colour = tuple[int, int, int]  # 0/1 per channel (RGB LEDs are driven without PWM)


class PanelState(StrEnum):
    IDLE = "idle"
    COUNTDOWN = "countdown"
    RECORDING = "recording"
    SCORING = "scoring"
    RESULT = "result"
    NOT_SCORABLE = "not_scorable"
    CANCELLED = "cancelled"
    ERROR = "error"
    CAMERA_LOST = "camera_lost"
    SAFE = "safe"


@dataclass(frozen=True)
class Pattern:
    steps: tuple[tuple[bool, float | None], ...]
    colour: Colour = (1, 1, 1)

    @property
    def blinks(self) -> int:
        """Number of 'on' steps in one cycle."""
        return sum(1 for on, _ in self.steps if on)


OFF: Colour = (0, 0, 0)
RED: Colour = (1, 0, 0)
GREEN: Colour = (0, 1, 0)
BLUE: Colour = (0, 0, 1)
YELLOW: Colour = (1, 1, 0)
CYAN: Colour = (0, 1, 1)
MAGENTA: Colour = (1, 0, 1)
WHITE: Colour = (1, 1, 1)
SCORE_COLOURS: dict[int, Colour] = {0: RED, 1: YELLOW, 2: GREEN}

PATTERNS: dict[PanelState, Pattern] = {
    PanelState.IDLE: Pattern(((True, 0.1), (False, 2.9)), BLUE),
    PanelState.COUNTDOWN: Pattern(((True, 0.25), (False, 0.25)), YELLOW),
    PanelState.RECORDING: Pattern(((True, None),), WHITE),
    PanelState.SCORING: Pattern(((True, 0.05), (False, 0.1)), CYAN),
    PanelState.NOT_SCORABLE: Pattern(((True, 0.8), (False, 0.3), (True, 0.8), (False, 1.5)), MAGENTA),
    PanelState.CANCELLED: Pattern(((True, 0.3), (False, None)), YELLOW),
    PanelState.ERROR: Pattern(
        ((True, 0.1), (False, 0.1), (True, 0.1), (False, 0.1), (True, 0.1), (False, 1.0)), RED
    ),
    PanelState.CAMERA_LOST: Pattern(((True, 0.1), (False, 0.15), (True, 0.1), (False, 1.2)), RED),
    PanelState.SAFE: Pattern(((False, None),), OFF),
}


def pattern_for(state: PanelState, score: int | None = None) -> Pattern:
    """The pattern of ``state``; for ``result`` the blink count (and colour) is the score."""
    if state is not PanelState.RESULT:
        return PATTERNS[state]
    if score not in SCORE_COLOURS:
        raise ValueError(f"a result pattern needs a score 0, 1 or 2, got {score!r}")
    assert score is not None
    colour = SCORE_COLOURS[score]
    if score == 0:
        return Pattern(((True, 1.5), (False, 1.5)), colour)
    blinks: list[tuple[bool, float | None]] = []
    for _ in range(score):
        blinks += [(True, 0.3), (False, 0.3)]
    blinks[-1] = (False, 1.5)
    return Pattern(tuple(blinks), colour)
