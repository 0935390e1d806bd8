"""The final decision: quality gates, RNN and range-of-motion rule → one :class:`Result`.

1. Quality gates (:mod:`device.trial.quality`). Any failure → ``not_scorable`` with the
   gates' reasons; no score is invented.
2. The rule (:mod:`device.scoring.rules`) always runs: it is the cross-check and the
   explanation.
3. The RNN (:mod:`device.scoring.rnn`): ``scorer_int8`` when the trial has z, else
   ``scorer_2d_int8`` (also used when only that one is installed). Its arg-max is the score,
   its probability the confidence.
4. Confidence below ``scoring.min_confidence`` → ``not_scorable`` ("low confidence").
   The result is flagged for clinician ``review`` when the rule disagrees with the RNN or
   the confidence is below ``scoring.review_confidence``.

With ``scoring.use_rnn = false`` the rule decides alone and every result is flagged for review.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from device.config import Config
from device.errors import ModelError
from device.scoring.installed import scorer_dir
from device.scoring.reference import apply_reference, as_2d
from device.scoring.rnn import MODEL_NAMES, RNNScorer, scorer_entry
from device.scoring.rules import RuleScorer
from device.scoring.types import Result
from device.trial.quality import check_quality
from device.trial.types import Trial

log = logging.getLogger(__name__)


class Decider:
    """Scores trials with the configured models; load once, score many (one per device)."""

    def __init__(
        self, cfg: Config | None = None, models_dir: Path | None = None, state_dir: Path | None = None
    ) -> None:
        self.cfg = cfg or Config()
        self.models_dir = Path(models_dir) if models_dir else self.cfg.models.resolved_dir()
        # site-installed scorers (flexscore models install) in <state dir>/models take precedence
        self.state_dir = (
            Path(state_dir) if state_dir else (None if models_dir else self.cfg.app.resolved_state_dir())
        )
        self.rule = RuleScorer()
        self._rnn: dict[str, RNNScorer] = {}

    def rnn_for(self, has_z: bool) -> RNNScorer:
        """The RNN for a trial (3D model when it has z, ``scoring.use_z`` is set and the model
        exists, else 2D)."""
        has_z = has_z and self.cfg.scoring.use_z
        order = ["3d", "2d"] if has_z else ["2d"]
        for variant in order:
            name = MODEL_NAMES[variant]
            if variant in self._rnn:
                return self._rnn[variant]
            models_dir = scorer_dir(self.models_dir, self.state_dir, name)
            if scorer_entry(models_dir, name) is not None:
                self._rnn[variant] = RNNScorer(models_dir, name, self.cfg.scoring.threads)
                return self._rnn[variant]
        raise ModelError(
            f"no scorer model for {'3D' if has_z else '2D'} landmarks in {self.models_dir} "
            f"(looked for {', '.join(MODEL_NAMES[v] for v in order)}; run scripts/train_scorer.py)"
        )

    def score(self, trial: Trial, reference: Trial | None = None) -> Result:
        """Score ``trial``; with ``reference`` (a trial of the unaffected hand) the result is
        relative to that hand's range (:mod:`device.scoring.reference`) and
        ``details["mode"]`` says which mode was used. Without ``scoring.use_z`` the absolute
        score (RNN and rule) comes from x, y only; the two hands' ranges of motion are still
        compared in 3D when both trials have z (the rule's bend angles, unlike the 3D RNN,
        hold up on real tracked video: scripts/eval_pipeline.py)."""
        result = self._score_absolute(trial if self.cfg.scoring.use_z else as_2d(trial))
        if reference is None:
            return result
        return apply_reference(result, trial, reference, self.cfg.trial)

    def _score_absolute(self, trial: Trial) -> Result:
        quality = check_quality(trial, self.cfg.trial)
        qjson = quality.to_json()
        if not quality.ok:
            return Result(
                status="not_scorable",
                score=None,
                reasons=tuple(r.message for r in quality.reasons),
                details={"reason_codes": list(quality.codes)},
                quality=qjson,
            )
        rule = self.rule.score(trial)
        sc = self.cfg.scoring
        if not sc.use_rnn:
            return Result(
                status="scored",
                score=rule.score,
                confidence=0.0,
                reasons=(*rule.reasons, "scored by the rule alone (RNN disabled): review"),
                details={"rule": rule.details},
                rule_score=rule.score,
                review=True,
                quality=qjson,
            )
        rnn = self.rnn_for(trial.has_z).score(trial)
        reasons = [*rnn.reasons, *rule.reasons]
        review = rnn.score != rule.score or rnn.confidence < sc.review_confidence
        if rnn.score != rule.score:
            reasons.append(f"the RNN ({rnn.score}) and the rule ({rule.score}) disagree: review")
        details = {"rnn": rnn.details, "rule": rule.details}
        if rnn.confidence < sc.min_confidence:
            reasons.insert(
                0,
                f"low confidence ({rnn.confidence:.0%} < {sc.min_confidence:.0%}): "
                "repeat the trial or score it by hand",
            )
            return Result(
                status="not_scorable",
                score=None,
                probabilities=rnn.probabilities,
                confidence=rnn.confidence,
                reasons=tuple(reasons),
                details={**details, "reason_codes": ["low_confidence"]},
                rule_score=rule.score,
                review=True,
                quality=qjson,
            )
        return Result(
            status="scored",
            score=rnn.score,
            probabilities=rnn.probabilities,
            confidence=rnn.confidence,
            reasons=tuple(reasons),
            details=details,
            rule_score=rule.score,
            review=review,
            quality=qjson,
        )

    def close(self) -> None:
        for scorer in self._rnn.values():
            scorer.close()
        self._rnn.clear()


@functools.lru_cache(maxsize=4)
def _cached_decider(cfg: Config) -> Decider:
    return Decider(cfg)


def score_trial(trial: Trial, cfg: Config | None = None) -> Result:
    """Score one trial with the models of ``cfg`` (loaded once per config and cached).

    ``Result.to_json()`` gives the document the CLI prints.
    """
    return _cached_decider(cfg or Config()).score(trial)
