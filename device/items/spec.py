"""What an assessment item is: :class:`AssessmentItem`, a frozen specification.

An item is one Fugl-Meyer task the kit scores from one recording (or from its part of a
combined recording). Everything that differs between items lives here, so adding an item is
one module that builds a spec and one :func:`device.items.register_item` call
(``docs/ARCHITECTURE.md``, "Adding an item").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np

from device.config import TrialConfig
from device.errors import ConfigError
from device.scoring.types import Result
from device.trial.types import Trial

VARIANTS = ("hand", "3d", "2d")  # scorer inputs: hand frame (world landmarks), image with z, x/y only
PLOT_KINDS = ("closure", "opening")  # how the page plots a trial of the item


class ItemRule(Protocol):
    """An item's interpretable rule: ``score(trial)`` → a :class:`Result` with ``rule_score``
    set, ``details["method"]`` ("hand", "3d" or "2d") and, when near a threshold,
    ``details["borderline"] = True``. A rule may answer ``not_scorable`` (e.g. the trial
    never shows the starting posture the item needs); the decision then gives no score."""

    def score(self, trial: Trial) -> Result: ...


# The reference mode: (absolute result, trial, reference trial, trial config) → result.
ReferenceFn = Callable[[Result, Trial, Trial, TrialConfig], Result]
# A synthetic trial with a given score: (score, rng, **options) → (trial, info dict).
GeneratorFn = Callable[..., tuple[Trial, dict[str, Any]]]


@dataclass(frozen=True)
class ScoreMeaning:
    """What a score of the item means, for the clinician and in plain words for the patient."""

    clinician: str
    patient: str


def _identity(trial: Trial) -> Trial:
    return trial


def _never(_rule_result: Result) -> str | None:
    return None


@dataclass(frozen=True, eq=False)
class AssessmentItem:
    """One assessment item (compared and hashed by identity; the registry keys it by ``key``).

    Attributes:
        key: stable identifier stored with each trial and score ("mass_flexion").
        name: display name ("Mass finger flexion").
        instructions: what the patient is told to do, in plain words.
        meanings: the meaning of the scores 0, 1, 2 (clinician and patient wording).
        rule: the item's range-of-motion rule (:class:`ItemRule`).
        rule_version: the version string a score records for the rule ("rom-rule-1").
        models: scorer model names per variant ("hand", "3d", "2d"); a variant without a
            model is scored by the rule alone and flagged for review.
        float_models: the float (training-side) model names per variant.
        generate: synthetic trial generator ``(score, rng, **options) → (trial, info)``.
        fhir_code: the FHIR ``linkId`` of the item's answer ("mass-flexion").
        fhir_display: the FHIR item text (the item and its score meanings).
        plot: how a trial of the item is plotted ("closure": 0 open … 1 fist over time;
            "opening": the same curve read as opening from the most closed point).
        unfinished: rule result → a reason when the movement was still under way at the
            end of the recording (the score could have been higher had it gone on), else None.
        reference: the reference mode ``(absolute result, trial, reference trial, trial
            config) → result``, given whole recordings (it cuts its own segments), or None
            when the item has none (the absolute result stands, with a reason).
        segment: the part of a combined recording ("make a fist, then open your hand
            fully") this item is scored on.
        min_duration_s: a recording of this item shorter than this is "stopped too early";
            None: the trial config's own limit.
        no_hand_hint: added to the reasons when no hand was found at all (quality gate
            ``no_hand``): how to record this item so it is (e.g. mass extension starts from
            a fist, which the palm detector finds less often than an open hand).
    """

    key: str
    name: str
    instructions: str
    meanings: tuple[ScoreMeaning, ScoreMeaning, ScoreMeaning]
    rule: ItemRule
    rule_version: str
    models: Mapping[str, str]
    generate: GeneratorFn
    fhir_code: str
    fhir_display: str
    plot: str = "closure"
    float_models: Mapping[str, str] = field(default_factory=dict)
    unfinished: Callable[[Result], str | None] = _never
    reference: ReferenceFn | None = None
    segment: Callable[[Trial], Trial] = _identity
    min_duration_s: float | None = None
    no_hand_hint: str | None = None

    def __post_init__(self) -> None:
        if not self.key or not self.key.replace("_", "").isalnum() or self.key != self.key.lower():
            raise ConfigError(f"item key must be lower-case letters, digits and '_', got {self.key!r}")
        if len(self.meanings) != 3:
            raise ConfigError(f"item '{self.key}' needs the meanings of scores 0, 1 and 2")
        bad = sorted(set(self.models) - set(VARIANTS))
        if bad:
            raise ConfigError(f"item '{self.key}': unknown scorer variant(s) {bad} (known: {list(VARIANTS)})")
        if self.plot not in PLOT_KINDS:
            raise ConfigError(f"item '{self.key}': plot must be one of {list(PLOT_KINDS)}, got {self.plot!r}")
        # read-only views, so a registered spec cannot be changed behind the registry's back
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))
        object.__setattr__(self, "float_models", MappingProxyType(dict(self.float_models)))

    def meaning(self, score: int) -> ScoreMeaning:
        """The meaning of score 0, 1 or 2."""
        if score not in (0, 1, 2):
            raise ConfigError(f"a score is 0, 1 or 2, got {score!r}")
        return self.meanings[score]

    def model_name(self, variant: str) -> str | None:
        """The scorer model for a variant, or None when the item has none."""
        return self.models.get(variant)

    def make_trials(
        self, n_per_class: int, seed: int = 0, **options: Any
    ) -> list[tuple[Trial, dict[str, Any]]]:
        """``n_per_class`` synthetic trials of each score, deterministic for a seed."""
        rng = np.random.default_rng(seed)
        return [self.generate(s, rng, **options) for _ in range(n_per_class) for s in (0, 1, 2)]

    def to_json(self) -> dict[str, Any]:
        """What the web page / exports show about the item."""
        return {
            "key": self.key,
            "name": self.name,
            "instructions": self.instructions,
            "meanings": [
                {"score": s, "clinician": m.clinician, "patient": m.patient}
                for s, m in enumerate(self.meanings)
            ],
            "rule_version": self.rule_version,
            "models": dict(self.models),
            "fhir_code": self.fhir_code,
            "fhir_display": self.fhir_display,
            "plot": self.plot,
        }

    def __repr__(self) -> str:
        return f"<AssessmentItem {self.key}>"
