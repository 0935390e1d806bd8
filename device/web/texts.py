"""Words the pages show for states, scores and quality metrics (one place, for Python and JS).

Every text here is English and marked with :func:`~device.web.i18n.N_`; the pages translate it
when they render (:func:`translated`), so the same tables serve every language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from device.web.i18n import N_, gettext, number, percent

# state → (headline, instruction)
STATE_TEXT: dict[str, tuple[str, str]] = {
    "idle": (N_("Ready"), N_("Enter the patient code, choose the affected side and press Start.")),
    "countdown": (N_("Get ready"), N_("Hold the open hand in view, palm towards the camera.")),
    "recording": (N_("Recording"), N_("Close all fingers into a fist as far as possible, then open again.")),
    "scoring": (N_("Scoring…"), N_("Please wait a moment.")),
    "result": (N_("Done"), N_("The result is ready.")),
    "rejected": (N_("Not scorable"), N_("The trial could not be scored. See why and try again.")),
    "cancelled": (N_("Cancelled"), N_("The trial was cancelled.")),
    "error": (N_("Error"), N_("Something went wrong while scoring. Try again.")),
}
# patient mode: what to do, in the patient's words (no patient code to type)
PATIENT_STATE_TEXT: dict[str, tuple[str, str]] = {
    **STATE_TEXT,
    "idle": (N_("Ready"), N_("Sit with your hand in front of the camera and press Start.")),
    "countdown": (N_("Get ready"), N_("Open your hand and hold it still, palm towards the camera.")),
    "recording": (N_("Now close your hand"), N_("Make a fist as far as you can, then open your hand again.")),
}
CAMERA_TEXT = {
    "ok": N_("Camera OK"),
    "starting": N_("Camera starting"),
    "lost": N_("Camera lost"),
    "restarting": N_("Camera restarting"),
    "stopped": N_("Camera stopped"),
}
HAND_TEXT: dict[str | None, str] = {
    "left": N_("left hand in view"),
    "right": N_("right hand in view"),
    None: N_("no hand in view"),
}
SIDE_TEXT = {"left": N_("Left"), "right": N_("Right")}
QUALITY_TEXT: dict[str, tuple[str, str]] = {
    # metric → (label, unit or format hint)
    "frames": (N_("Frames recorded"), ""),
    "duration_s": (N_("Recording length"), "s"),
    "presence_share": (N_("Hand visible"), "%"),
    "hand_size_px": (N_("Hand size (median)"), "px"),
    "edge_cut_share": (N_("Frames with the hand at the edge"), "%"),
    "seen_side": (N_("Hand seen"), ""),
    "seen_side_share": (N_("Frames showing that hand"), "%"),
    "side_share": (N_("Frames showing the assessed side"), "%"),
}
# score → (meaning for everyone, what it means for the patient)
SCORE_MEANING: dict[int, tuple[str, str]] = {
    0: (N_("No flexion"), N_("The fingers did not close this time.")),
    1: (N_("Partial flexion"), N_("The fingers closed part of the way.")),
    2: (N_("Full flexion"), N_("The fingers closed into a full fist.")),
}
# Assessment items (device/items): the page's names and score meanings, to translate. An item
# registered without an entry here (an extension, a test's dummy) shows its spec's English.
ITEM_NAME: dict[str, str] = {
    "mass_flexion": N_("Mass finger flexion"),
    "mass_extension": N_("Mass finger extension"),
}
ITEM_MEANING: dict[str, dict[int, tuple[str, str]]] = {
    "mass_flexion": SCORE_MEANING,
    "mass_extension": {
        0: (N_("No extension"), N_("The fingers did not open from the fist.")),
        1: (
            N_("Partial extension, or can release an active grasp"),
            N_("The fingers opened part of the way."),
        ),
        2: (
            N_("Full active extension (compared with the unaffected hand)"),
            N_("The fingers opened all the way."),
        ),
    },
}
PROTOCOL_NAME = {"all": N_("Both items from one recording: make a fist, then open the hand")}
ANONYMOUS_TEXT = N_("Anonymous screening: this trial belongs to no patient.")


def item_text(key: str) -> str:
    """The translated name of assessment item ``key`` ("all": the combined protocol)."""
    from device.items import ITEMS

    if key in ITEM_NAME:
        return gettext(ITEM_NAME[key])
    if key in PROTOCOL_NAME:
        return gettext(PROTOCOL_NAME[key])
    spec = ITEMS.get(key)
    return spec.name if spec is not None else key


def item_meaning(key: str) -> dict[int, tuple[str, str]]:
    """score → (meaning, plain words) for item ``key``, translated."""
    from device.items import ITEMS

    if key in ITEM_MEANING:
        return translated(ITEM_MEANING[key])
    spec = ITEMS.get(key)
    if spec is None:
        return translated(SCORE_MEANING)
    return {i: (m.clinician, m.patient) for i, m in enumerate(spec.meanings)}


def item_choices() -> list[tuple[str, str]]:
    """(key, translated name) of every registered item, then the combined protocol."""
    from device.items import ITEMS

    return [(k, item_text(k)) for k in ITEMS] + [("all", item_text("all"))]


REVIEW_TEXT = N_(
    "Please review: the two checks disagree or the measurement is near a limit. Look at the plot "
    "and the recording, then enter your own score below."
)
PATIENT_REVIEW_TEXT = N_(
    "This result is marked for your clinician to check. You do not need to do anything: "
    "your clinician will look at it."
)
PATIENT_NEXT = {
    "scored": N_("You can rest now. Do another trial only if your clinician asked for more than one."),
    "not_scorable": N_("Rest your hand for a moment, follow the tip above and press Start to try again."),
    "cancelled": N_("Press Start when you are ready to try again."),
}
# reason code → what the patient (or anyone) can do about it
REASON_ADVICE: dict[str, str] = {
    "no_hand": N_("No hand was seen. Sit in front of the camera with your hand in the picture."),
    "hand_missing": N_("The hand left the picture. Keep your whole hand in view the whole time."),
    "hand_too_small": N_("The hand was too far away. Move your hand closer to the camera."),
    "hand_cut_by_edge": N_("Part of the hand was outside the picture. Move your hand to the middle."),
    "fingers_hidden": N_("The hand was turned sideways. Turn your palm towards the camera."),
    "wrong_side": N_("The camera saw the other hand. Use the hand that is being tested."),
    "stopped_early": N_("The recording was stopped too early. Let it run until it ends by itself."),
    "too_short": N_("The recording was too short. Let it run until it ends by itself."),
    "camera_stalled": N_(
        "The camera paused during the recording. Try again; if it happens again, tell your clinician."
    ),
    "camera_lost": N_("The camera stopped working. Tell your clinician."),
    "disk_full": N_("The appliance's storage is full. Tell your clinician."),
    "not_saved": N_("The trial could not be saved. Tell your clinician."),
    "scoring_failed": N_(
        "Something went wrong while scoring. Try again; if it happens again, tell your clinician."
    ),
    "not_scorable": N_(
        "The movement could not be judged. Open your hand fully first, then close it as far as you can."
    ),
    "reference_unusable": N_("The unaffected hand could not be used as the reference. Record it again."),
    "cancelled": N_("The trial was cancelled."),
}
GENERIC_ADVICE = N_("Keep your whole hand in view, palm towards the camera, and try again.")


def translated(table: Mapping[Any, Any]) -> dict[Any, Any]:
    """``table`` with every text (or tuple of texts) translated into the page's language."""
    out: dict[Any, Any] = {}
    for key, value in table.items():
        if isinstance(value, tuple):
            out[key] = tuple(gettext(v) if v else v for v in value)
        else:
            out[key] = gettext(value) if value else value
    return out


def advice(reasons: list[dict[str, str]]) -> list[str]:
    """What to do about a trial's reasons, once per kind, in the page's language."""
    seen: list[str] = []
    for r in reasons:
        text = REASON_ADVICE.get(str(r.get("code", "")), GENERIC_ADVICE)
        if text not in seen:
            seen.append(text)
    return [gettext(t) for t in seen]


def quality_rows(quality: dict[str, object] | None) -> list[tuple[str, str]]:
    """(label, value) rows of a quality report for the result page, rounded for people
    ("5.9 s", "123 px", "87%")."""
    rows: list[tuple[str, str]] = []
    for key, (label, unit) in QUALITY_TEXT.items():
        if not quality or key not in quality or quality[key] is None:
            continue
        value = quality[key]
        if unit == "%" and isinstance(value, int | float):
            text = percent(float(value))
        elif unit == "s" and isinstance(value, int | float):
            text = f"{number(float(value), 1)} s"
        elif isinstance(value, float):
            text = f"{number(value)} {unit}".strip()
        elif key == "seen_side" and isinstance(value, str):
            text = gettext(SIDE_TEXT.get(value, value))
        else:
            text = f"{value} {unit}".strip()
        rows.append((gettext(label), text))
    return rows
