"""The front panel: one button, one LED (single or RGB) and an optional buzzer, via gpiozero.

The composition root passes an explicit gpiozero ``pin_factory`` (the real one on the Pi,
``gpiozero.pins.mock.MockFactory()`` elsewhere); nothing here picks a global factory.

Button: a short press (released before ``long_press_s``) calls ``on_press``; holding it for
``long_press_s`` calls ``on_long_press`` once and the release that follows is not a press.
Firing on release is what makes the two distinguishable.

LED: :meth:`Panel.show` selects a :class:`~device.panel.patterns.Pattern`; a daemon thread
("panel-led") plays it, waiting on an event between steps so a new state interrupts the
old pattern at once. ``repeat=False`` plays each pattern once and then holds its last
level (tests use it to count blinks exactly). :meth:`Panel.on_recorder_change` is a
recorder listener; :meth:`Panel.set_camera_ok` overlays "camera lost". A cancelled trial
(a second press during the countdown, the web page's Cancel, a long press) shows its own
pattern and three quick beeps.

Voice (issue 18, optional): with a :class:`~device.panel.voice.Voice` the panel also speaks —
a welcome that explains the button (press, long press) when it starts, every state change
(:meth:`Panel.on_recorder_change`), the recorder's cues (:meth:`Panel.on_cue`: guidance,
"close your hand now", "now open it again"), and what the long press did ("safe").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from device.config import PanelConfig
from device.panel.patterns import OFF, Colour, PanelState, Pattern, pattern_for

log = logging.getLogger(__name__)

# Recorder state name → what the panel shows (cancelled goes straight back to idle).
FROM_RECORDER: dict[str, PanelState] = {
    "idle": PanelState.IDLE,
    "countdown": PanelState.COUNTDOWN,
    "recording": PanelState.RECORDING,
    "scoring": PanelState.SCORING,
    "result": PanelState.RESULT,
    "rejected": PanelState.NOT_SCORABLE,
    "cancelled": PanelState.CANCELLED,
    "error": PanelState.ERROR,
}


def result_score(result: Any) -> int | None:
    """The final score of a scoring result (``final`` or ``score`` attribute, or an int)."""
    if isinstance(result, int):
        return result
    for name in ("final", "final_score", "score"):
        value = getattr(result, name, None)
        if isinstance(value, int):
            return value
    return None


class Panel:
    """Button + LED (+ buzzer); see the module doc."""

    def __init__(
        self,
        cfg: PanelConfig,
        *,
        pin_factory: Any,
        on_press: Callable[[], None] | None = None,
        on_long_press: Callable[[], None] | None = None,
        repeat: bool = True,
        voice: Any = None,
    ) -> None:
        from gpiozero import LED, RGBLED, Button, Buzzer

        self.cfg = cfg
        self.on_press = on_press
        self.on_long_press = on_long_press
        self._repeat = repeat
        self._unit = cfg.blink_unit_s
        self._closed = False
        self._held = False
        self.voice = voice  # device.panel.voice.Voice, or None (off)
        self._lock = threading.Condition()
        self._gen = 0  # bumped by every show()
        self._played = 0  # generation whose first cycle (or hold) has been reached
        self._state = PanelState.IDLE
        self._score: int | None = None
        self._camera_ok = True
        self.history: list[tuple[PanelState, int | None]] = []
        self._devices: list[Any] = []
        try:
            self.button = None
            if cfg.button_pin is not None:
                self.button = Button(
                    cfg.button_pin,
                    pull_up=True,
                    bounce_time=cfg.bounce_s or None,
                    hold_time=cfg.long_press_s,
                    pin_factory=pin_factory,
                )
                self._devices.append(self.button)
                self.button.when_pressed = self._pressed
                self.button.when_held = self._held_down
                self.button.when_released = self._released
            self.led: Any = None
            self.rgb = bool(cfg.rgb_pins)
            if cfg.rgb_pins:
                r, g, b = cfg.rgb_pins
                self.led = RGBLED(
                    r, g, b, active_high=cfg.led_active_high, pwm=False, pin_factory=pin_factory
                )
            elif cfg.led_pin is not None:
                self.led = LED(cfg.led_pin, active_high=cfg.led_active_high, pin_factory=pin_factory)
            if self.led is not None:
                self._devices.append(self.led)
            self.buzzer = None
            if cfg.buzzer_pin is not None:
                self.buzzer = Buzzer(cfg.buzzer_pin, pin_factory=pin_factory)
                self._devices.append(self.buzzer)
        except Exception:
            self._close_devices()
            raise
        self._changed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="panel-led", daemon=True)
        self.show(PanelState.IDLE)
        self._thread.start()
        if voice is not None:
            voice.say("welcome", seconds=f"{cfg.long_press_s:g}")

    # -- showing -------------------------------------------------------------------------
    @property
    def state(self) -> PanelState:
        return self._state

    def show(self, state: PanelState, score: int | None = None) -> None:
        """Display ``state`` (``score`` for a result). Camera lost overrides other states
        until :meth:`set_camera_ok` (True); ``safe`` overrides nothing."""
        with self._lock:
            if state is PanelState.SAFE and self._state is not PanelState.SAFE and self.voice is not None:
                self.voice.say("safe", interrupt=True)
            self._state, self._score = state, score
            self._refresh()

    def set_camera_ok(self, ok: bool) -> None:
        with self._lock:
            if ok != self._camera_ok:
                self._camera_ok = ok
                self._refresh()

    def _refresh(self) -> None:
        shown = self._state if self._camera_ok else PanelState.CAMERA_LOST
        score = self._score if shown is PanelState.RESULT else None
        if shown is PanelState.RESULT and score is None:
            shown = PanelState.ERROR  # a result without a score is a fault, never a guess
        entry = (shown, score)
        if self.history and self.history[-1] == entry:
            return
        self.history.append(entry)
        self._pattern = pattern_for(shown, score)
        self._gen += 1
        self._changed_set()
        log.debug("panel shows %s", shown.value)

    def _changed_set(self) -> None:
        changed = getattr(self, "_changed", None)
        if changed is not None:
            changed.set()

    def wait_shown(self, timeout: float = 5.0) -> bool:
        """Block until the LED has played the current pattern once (or reached its hold
        step). For tests and the demo; True on success."""
        with self._lock:
            return self._lock.wait_for(lambda: self._played >= self._gen, timeout)

    def on_recorder_change(self, change: Any) -> None:
        """Recorder listener: map its state to the LED, beep at start and end of recording."""
        name = getattr(change.new, "value", str(change.new))
        state = FROM_RECORDER.get(name, PanelState.ERROR)
        score = None
        if state is PanelState.RESULT:
            info = getattr(change, "info", None)
            score = result_score(getattr(info, "result", None))
        if name == "recording":
            self.beep(1)
        elif name == "cancelled":
            self.beep(3)
        elif getattr(change.old, "value", None) == "recording":
            self.beep(2)
        self.show(state, score)
        if self.voice is not None:
            self.voice.on_change(change)

    def on_cue(self, cue: Any) -> None:
        """Recorder cue listener (guidance, close/open): spoken when the voice is on."""
        if self.voice is not None:
            self.voice.on_cue(cue)

    def beep(self, n: int = 1) -> None:
        if self.buzzer is not None and not self._closed:
            self.buzzer.beep(0.1 * self._unit, 0.1 * self._unit, n=n, background=True)

    # -- LED thread ----------------------------------------------------------------------
    def _set_led(self, on: bool, colour: Colour) -> None:
        if self.led is None:
            return
        if self.rgb:
            self.led.color = colour if on else OFF
        else:
            self.led.value = 1 if on else 0

    def _run(self) -> None:
        last_gen = -1
        while not self._closed:
            with self._lock:
                pattern: Pattern = self._pattern
                gen = self._gen
                self._changed.clear()
            interrupted = False
            held = False
            if gen != last_gen:
                # start every new pattern from dark so its first blink is seen as one
                self._set_led(False, pattern.colour)
                last_gen = gen
            for on, seconds in pattern.steps:
                self._set_led(on, pattern.colour)
                if seconds is None:
                    held = True
                    break
                if self._changed.wait(seconds * self._unit):
                    interrupted = True
                    break
            if interrupted:
                continue
            with self._lock:
                self._played = max(self._played, gen)
                self._lock.notify_all()
            if held or not self._repeat:
                self._changed.wait()

    # -- button --------------------------------------------------------------------------
    def _pressed(self) -> None:
        self._held = False

    def _held_down(self) -> None:
        self._held = True
        log.info("button held: long press")
        self._call(self.on_long_press)

    def _released(self) -> None:
        if self._held:
            self._held = False
            return
        self._call(self.on_press)

    def _call(self, fn: Callable[[], None] | None) -> None:
        if fn is None:
            return
        try:
            fn()
        except Exception:
            log.exception("panel callback %r failed", fn)

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the LED thread, switch everything off and release the pins. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.voice is not None:
            self.voice.close()
        self._changed.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        self._close_devices()
        log.info("panel closed")

    def _close_devices(self) -> None:
        for dev in reversed(self._devices):
            try:
                dev.close()
            except Exception:
                log.exception("error closing %r", dev)
        self._devices.clear()

    def __enter__(self) -> Panel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return "<Panel closed>"
        return (
            f"<Panel {self._state.value} button={self.cfg.button_pin} "
            f"led={self.cfg.rgb_pins or self.cfg.led_pin} buzzer={self.cfg.buzzer_pin}>"
        )
