"""Front panel on gpiozero's MockFactory: drive the button pin, read the LED pin's history."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from gpiozero.pins.mock import MockFactory

from device.config import PanelConfig
from device.panel import PATTERNS, Panel, PanelState, pattern_for, result_score
from device.trial.recorder import RecorderTiming, TrialRecorder
from device.vision.types import HandObservation

BUTTON, LED, BUZZER = 17, 27, 22
FAST = PanelConfig(
    button_pin=BUTTON, led_pin=LED, buzzer_pin=BUZZER, bounce_s=0, long_press_s=0.2,
    blink_unit_s=0.001,
)  # fmt: skip


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    try:
        yield factory
    finally:
        factory.reset()
        factory.close()


@dataclass
class Result:
    score: int | None


def rises(states: list[object]) -> int:
    """Number of off→on edges in a mock pin's recorded states."""
    levels = [bool(s.state) for s in states]  # type: ignore[attr-defined]
    return sum(1 for a, b in itertools.pairwise(levels) if b and not a)


def test_patterns_are_distinct_and_results_blink_the_score() -> None:
    shapes = {(p.steps, p.colour) for p in PATTERNS.values()}
    assert len(shapes) == len(PATTERNS)
    assert [pattern_for(PanelState.RESULT, s).blinks for s in (0, 1, 2)] == [1, 1, 2]
    assert pattern_for(PanelState.RESULT, 0).steps[0][1] == 1.5  # zero: one long flash
    assert [pattern_for(PanelState.RESULT, s).colour for s in (0, 1, 2)] == [
        (1, 0, 0), (1, 1, 0), (0, 1, 0)
    ]  # fmt: skip
    with pytest.raises(ValueError, match="score 0, 1 or 2"):
        pattern_for(PanelState.RESULT, None)
    assert result_score(Result(1)) == 1 and result_score(2) == 2 and result_score(None) is None


def test_short_and_long_presses(mock_factory: MockFactory) -> None:
    presses: list[str] = []
    held = threading.Event()

    def long_press() -> None:
        presses.append("long")
        held.set()

    with Panel(
        FAST, pin_factory=mock_factory, on_press=lambda: presses.append("short"),
        on_long_press=long_press,
    ) as panel:  # fmt: skip
        pin = mock_factory.pin(BUTTON)
        pin.drive_low()  # pull-up button: low = pressed
        pin.drive_high()
        assert presses == ["short"]
        pin.drive_low()
        assert held.wait(5)
        pin.drive_high()  # the release after a hold is not a press
        assert presses == ["short", "long"]
        assert "idle" in repr(panel)
    assert repr(panel) == "<Panel closed>"
    panel.close()  # idempotent


def test_led_over_a_whole_trial_driven_by_the_button(mock_factory: MockFactory) -> None:
    now = [0.0]
    pending: list[object] = []
    rec = TrialRecorder(
        lambda trial: Result(2), timing=RecorderTiming(), quality_fn=None,
        submit=pending.append, clock=lambda: now[0],
    )  # fmt: skip
    panel = Panel(FAST, pin_factory=mock_factory, on_press=rec.press, repeat=False)
    rec.add_listener(panel.on_recorder_change)
    led = mock_factory.pin(LED)
    button = mock_factory.pin(BUTTON)
    buzzer = mock_factory.pin(BUZZER)
    seen: dict[PanelState, list[object]] = {}

    def settle(state: PanelState) -> None:
        assert panel.wait_shown(5)
        assert panel.history[-1][0] is state
        seen[state] = list(led.states)
        led.clear_states()

    try:
        settle(PanelState.IDLE)
        button.drive_low()
        button.drive_high()
        settle(PanelState.COUNTDOWN)
        now[0] += 3.0
        rec.tick()
        settle(PanelState.RECORDING)
        assert led.state  # steady on while recording
        for i in range(200):
            now[0] += 1 / 30
            rec.on_observation(_hand(now[0], i))
        settle(PanelState.SCORING)
        pending.pop()()  # the scoring worker finishes
        assert panel.wait_shown(5)
        assert [s for s, _ in panel.history] == [
            PanelState.IDLE, PanelState.COUNTDOWN, PanelState.RECORDING,
            PanelState.SCORING, PanelState.RESULT,
        ]  # fmt: skip
        assert panel.history[-1] == (PanelState.RESULT, 2)
        seen[PanelState.RESULT] = list(led.states)
        led.clear_states()
        now[0] += 10.0
        rec.tick()
        settle(PanelState.IDLE)
    finally:
        panel.close()
        rec.close()
    assert rises(seen[PanelState.IDLE]) == 1  # one heartbeat blink
    assert rises(seen[PanelState.COUNTDOWN]) == 1  # one cycle of the 2 Hz blink
    assert rises(seen[PanelState.SCORING]) == 1
    assert len(seen[PanelState.RECORDING]) == 2  # off at the change, then steadily on
    assert rises(seen[PanelState.RESULT]) == 2  # score 2: two blinks
    assert not led.state  # closed: off
    assert rises(buzzer.states) >= 1  # beeped at the start of recording


def test_camera_lost_overrides_and_rgb_colours(mock_factory: MockFactory) -> None:
    cfg = PanelConfig(
        button_pin=None, rgb_pins=(5, 6, 13), bounce_s=0, blink_unit_s=0.001,
    )  # fmt: skip
    with Panel(cfg, pin_factory=mock_factory, repeat=False) as panel:
        red, green, blue = (mock_factory.pin(p) for p in (5, 6, 13))
        panel.show(PanelState.RECORDING)
        assert panel.wait_shown(5)
        assert (red.state, green.state, blue.state) == (True, True, True)  # white
        panel.set_camera_ok(False)
        panel.show(PanelState.IDLE)  # still camera lost
        assert panel.history[-1][0] is PanelState.CAMERA_LOST
        panel.set_camera_ok(True)
        assert panel.history[-1][0] is PanelState.IDLE
        assert panel.wait_shown(5)
        for pin in (red, green, blue):
            pin.clear_states()
        panel.show(PanelState.RESULT, 2)
        assert panel.wait_shown(5)
        assert rises(green.states) == 2 and rises(red.states) == 0 and rises(blue.states) == 0
        panel.show(PanelState.RESULT, None)  # no score: shown as an error, never a guess
        assert panel.history[-1] == (PanelState.ERROR, None)


def test_bad_pin_releases_what_was_claimed(mock_factory: MockFactory) -> None:
    cfg = PanelConfig(button_pin=17, led_pin=27)
    mock_factory.pin(27).function = "output"
    from gpiozero import LED

    blocker = LED(27, pin_factory=mock_factory)
    try:
        with pytest.raises(Exception, match="27"):
            Panel(cfg, pin_factory=mock_factory)
        Panel(PanelConfig(button_pin=17, led_pin=None), pin_factory=mock_factory).close()
    finally:
        blocker.close()


def _hand(t: float, i: int) -> HandObservation:
    import numpy as np

    lm = np.full((21, 3), 300.0, np.float32)
    lm[:, 0] += np.arange(21) * 5 + i % 3
    lm[:, 1] += np.arange(21) * 4
    lm[:, 2] = 0
    return HandObservation(
        frame_index=i, t=t, image_size=(640, 480), detected=True, presence=0.9,
        handedness="Right", handedness_score=0.9, landmarks=lm,
    )  # fmt: skip
