"""Mass finger extension (FMA-UE hand): from a full active fist, open the hand."""

from __future__ import annotations

from device.items.spec import AssessmentItem, ScoreMeaning
from device.scoring.extension import (
    RULE_VERSION,
    ExtensionRule,
    apply_extension_reference,
    from_most_closed,
    still_opening,
)
from device.trial.synthetic_extension import make_extension_trial

FHIR_DISPLAY = (
    "Fugl-Meyer Assessment, upper extremity, hand: mass extension "
    "(0 = no extension, 1 = partial extension or can release an active grasp, "
    "2 = full active extension)"
)

MASS_EXTENSION = AssessmentItem(
    key="mass_extension",
    name="Mass finger extension",
    instructions=(
        "Start with your hand open in view, make a fist, then open your hand as fully as you can "
        "and keep it open until the recording ends."
    ),
    meanings=(
        ScoreMeaning("No extension", "The fingers did not open from the fist."),
        ScoreMeaning(
            "Partial extension, or can release an active grasp",
            "The fingers opened part of the way.",
        ),
        ScoreMeaning(
            "Full active extension (compared with the unaffected hand)",
            "The fingers opened all the way.",
        ),
    ),
    rule=ExtensionRule(),
    rule_version=RULE_VERSION,
    models={"hand": "scorer_ext_hand_int8", "2d": "scorer_ext_2d_int8"},
    float_models={"hand": "scorer_ext_hand_fp32", "2d": "scorer_ext_2d_fp32"},
    generate=make_extension_trial,
    fhir_code="mass-extension",
    fhir_display=FHIR_DISPLAY,
    plot="opening",
    unfinished=still_opening,
    reference=apply_extension_reference,
    segment=from_most_closed,
    no_hand_hint=(
        "no hand found: start with the hand open in view, then make a fist and open it fully "
        "(the camera finds an open hand more easily than a fist, and keeps it while it closes)"
    ),
)
