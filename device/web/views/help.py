"""The patient leaflet: how to sit, the button, the LED patterns, what "not scorable" means.

Public (no login): it holds no patient data and is meant to be printed and left with the kit.
The LED rows are made from :data:`device.panel.patterns.PATTERNS`, so the leaflet always
describes the rhythms the panel really plays; docs/PATIENT.md is the same text for the repo.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from device.config import PanelConfig, TrialConfig
from device.panel.patterns import SCORE_COLOURS, PanelState, Pattern, pattern_for
from device.web.i18n import N_, gettext, number
from device.web.texts import REASON_ADVICE

bp = Blueprint("help", __name__, url_prefix="/help")

COLOUR_NAME = {
    (0, 0, 1): N_("blue"), (1, 1, 0): N_("yellow"), (1, 1, 1): N_("white"), (0, 1, 1): N_("cyan"),
    (1, 0, 0): N_("red"), (0, 1, 0): N_("green"), (1, 0, 1): N_("magenta"), (0, 0, 0): N_("off"),
}  # fmt: skip
# (state, score) → (what you see on a single LED, what it means)
LED_ROWS: tuple[tuple[PanelState, int | None, str, str], ...] = (
    (PanelState.IDLE, None, N_("a short blink every 3 seconds"),
     N_("Ready. Press the button to start.")),
    (PanelState.COUNTDOWN, None, N_("blinks twice a second"),
     N_("Get ready: open your hand. Press again to cancel.")),
    (PanelState.RECORDING, None, N_("steady on"),
     N_("Recording: close your hand into a fist, then open it.")),
    (PanelState.SCORING, None, N_("fast flicker"), N_("Working out the result. Please wait.")),
    (PanelState.RESULT, 2, N_("two blinks, pause"), N_("Result: score 2, the fingers closed fully.")),
    (PanelState.RESULT, 1, N_("one blink, pause"),
     N_("Result: score 1, the fingers closed part of the way.")),
    (PanelState.RESULT, 0, N_("one long flash, pause"), N_("Result: score 0, the fingers did not close.")),
    (PanelState.NOT_SCORABLE, None, N_("two long flashes, pause"),
     N_("Not scorable: the camera could not judge the movement. See below.")),
    (PanelState.CANCELLED, None, N_("one short flash, then dark"),
     N_("Cancelled (a second press during the countdown). Press again when you are ready.")),
    (PanelState.ERROR, None, N_("three fast blinks, pause"),
     N_("Something went wrong. Try again; if it repeats, tell your clinician.")),
    (PanelState.CAMERA_LOST, None, N_("two fast blinks, pause"),
     N_("The camera is not working. Tell your clinician.")),
    (PanelState.SAFE, None, N_("off"),
     N_("Safe to switch off (after a long press). Press the button to wake it.")),
)  # fmt: skip


def led_rows() -> list[dict[str, object]]:
    rows = []
    for state, score, looks, means in LED_ROWS:
        pat: Pattern = pattern_for(state, score)
        colour = SCORE_COLOURS[score] if score is not None else pat.colour
        rows.append(
            {
                "state": state.value,
                "score": score,
                "looks": gettext(looks),
                "colour": gettext(COLOUR_NAME.get(colour, "")),
                "css": COLOUR_NAME.get(colour, "off"),  # the swatch's class (CSP: no inline style)
                "means": gettext(means),
            }
        )
    return rows


@bp.get("")
def leaflet() -> str:
    trial = TrialConfig()
    return render_template(
        "leaflet.html",
        leds=led_rows(),
        long_press_s=number(PanelConfig().long_press_s),
        duration_s=number(trial.duration_s),
        advice=[gettext(REASON_ADVICE[k]) for k in ("no_hand", "hand_too_small", "hand_cut_by_edge",
                                                     "fingers_hidden", "wrong_side", "stopped_early")],
    )  # fmt: skip
