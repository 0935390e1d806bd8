"""The result of a scorer and the one-method scorer interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from device.trial.types import Trial

Status = Literal["scored", "not_scorable"]
SCORES = (0, 1, 2)


@dataclass(frozen=True)
class Result:
    """What a scorer says about one trial.

    Attributes:
        status: "scored", or "not_scorable" (then ``score`` is None and ``reasons`` say why).
        score: 0, 1 or 2 (Fugl-Meyer mass flexion), or None.
        probabilities: p(0), p(1), p(2) (sum 1), or None for a scorer without them.
        confidence: probability of the chosen score in [0, 1] (rule: a fixed value).
        reasons: human-readable sentences explaining the result.
        details: measured values (per-finger closure, model name, …) for the record.
        rule_score: the range-of-motion rule's score (set by the decision).
        review: True when a clinician should look (disagreement or low confidence).
        quality: the quality-gate report as JSON.
    """

    status: Status
    score: int | None
    probabilities: tuple[float, float, float] | None = None
    confidence: float = 0.0
    reasons: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    rule_score: int | None = None
    review: bool = False
    quality: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The CLI / web document: status, score, probabilities, confidence, rule_score,
        review, reasons, quality (and details)."""
        return {
            "status": self.status,
            "score": self.score,
            "probabilities": [round(p, 4) for p in self.probabilities]
            if self.probabilities is not None
            else None,
            "confidence": round(self.confidence, 4),
            "rule_score": self.rule_score,
            "review": self.review,
            "reasons": list(self.reasons),
            "quality": self.quality,
            "details": self.details,
        }


class Scorer(Protocol):
    """Anything that scores a trial."""

    def score(self, trial: Trial) -> Result: ...
