"""Mass finger flexion (FMA-UE hand): from an open hand, make a full fist."""

from __future__ import annotations

from device.items.spec import AssessmentItem, ScoreMeaning
from device.scoring.reference import apply_reference
from device.scoring.rnn import FLOAT_MODEL_NAMES, MODEL_NAMES
from device.scoring.rules import RuleScorer
from device.scoring.types import Result
from device.trial.synthetic import make_trial

RULE_VERSION = "rom-rule-1"
END_RISE = 0.10  # hand frame: mean closure still rising this much over the last 5 % of the trial

FHIR_DISPLAY = (
    "Fugl-Meyer Assessment, upper extremity, hand: mass flexion "
    "(0 = no flexion, 1 = partial flexion, 2 = full flexion)"
)


def still_closing(rule: Result) -> str | None:
    """Still closing at the end (hand frame): the score could only have been higher had the
    recording gone on — unless the fist was already reached."""
    d = rule.details
    if d.get("method") == "hand" and d.get("end_rise", 0.0) > END_RISE and rule.score != 2:
        return (
            "the recording ended while the fingers were still closing, so the movement "
            "could not be seen to its end: record again and let the recording run to its end"
        )
    return None


MASS_FLEXION = AssessmentItem(
    key="mass_flexion",
    name="Mass finger flexion",
    instructions="Start with your hand open, then make a fist as tightly as you can.",
    meanings=(
        ScoreMeaning("No flexion", "The fingers did not bend."),
        ScoreMeaning("Partial flexion", "The fingers bent part of the way."),
        ScoreMeaning("Full flexion", "The fingers closed into a full fist."),
    ),
    rule=RuleScorer(),
    rule_version=RULE_VERSION,
    models=MODEL_NAMES,
    float_models=FLOAT_MODEL_NAMES,
    generate=make_trial,
    fhir_code="mass-flexion",
    fhir_display=FHIR_DISPLAY,
    plot="closure",
    unfinished=still_closing,
    reference=apply_reference,
)
