"""The final decision: quality gates, RNN and range-of-motion rule → one :class:`Result`.

Never a confident wrong answer: a score is given with a high confidence only when both
independent checks say the same and the evidence is clear.

1. Quality gates (:mod:`device.trial.quality`): too short / stopped early, camera stalled,
   no hand, hand missing, too small, cut by the edge, fingers hidden (palm edge-on), wrong
   side. Any failure → ``not_scorable`` with the gates' reasons; no score is invented.
2. **Which frame.** A trial with world landmarks (the appliance's tracker gives them) is
   judged in the hand's own frame (``scoring.use_world``, default): the rule on calibrated
   joint angles and the ``hand`` RNN (``scorer_hand_int8``). A trial without them (another
   tracker's 2D keypoints, older stored trials) goes the image path: ``scorer_int8`` with z
   when ``scoring.use_z``, else ``scorer_2d_int8`` and the 2D rule.
3. The rule (:mod:`device.scoring.rules`) always runs: it is the cross-check and the
   explanation. In the hand frame a closing movement still under way when the recording
   ended, short of a fist → ``not_scorable`` ("stopped too early").
4. The RNN (:mod:`device.scoring.rnn`) gives probabilities. Then:

   =====================================  ===============================================
   RNN vs rule                            result
   =====================================  ===============================================
   agree, not near a rule threshold       the score, confidence = the RNN's probability;
                                          below ``scoring.min_confidence`` → not scorable,
                                          below ``scoring.review_confidence`` → review
   agree, rule near a threshold           the score, flagged for review, confidence
                                          ≤ ``BORDERLINE_CAP``
   differ by one point                    flagged for review, confidence ≤
                                          ``DISAGREE_CAP``; the score is the rule's in the
                                          hand frame (measured on real hands), the RNN's on
                                          the image path (as validated there)
   differ by two points (0 vs 2)          ``not_scorable``: the checks contradict each other
   =====================================  ===============================================

With ``scoring.use_rnn = false`` the rule decides alone and every result is flagged for review.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from device.config import Config
from device.errors import ModelError
from device.scoring.installed import scorer_dir
from device.scoring.reference import apply_reference, as_2d, without_world
from device.scoring.rnn import MODEL_NAMES, RNNScorer, scorer_entry
from device.scoring.rules import RuleScorer
from device.scoring.types import Result
from device.trial.quality import check_quality
from device.trial.types import Trial

log = logging.getLogger(__name__)

DISAGREE_CAP = 0.5  # confidence at most this when the RNN and the rule differ by one point
BORDERLINE_CAP = 0.7  # … and when the rule's measurement lies near one of its thresholds
END_RISE = 0.10  # hand frame: mean closure still rising this much over the last 5 % of the trial


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

    def rnn_for(self, has_z: bool, has_world: bool = False) -> RNNScorer:
        """The RNN for a trial: the hand-frame model when it has world landmarks and
        ``scoring.use_world`` is set; else the 3D model when it has z, ``scoring.use_z`` is
        set and the model exists, else 2D."""
        if has_world and self.cfg.scoring.use_world:
            order = ["hand"]
        else:
            order = ["3d", "2d"] if has_z and self.cfg.scoring.use_z else ["2d"]
        for variant in order:
            name = MODEL_NAMES[variant]
            if variant in self._rnn:
                return self._rnn[variant]
            models_dir = scorer_dir(self.models_dir, self.state_dir, name)
            if scorer_entry(models_dir, name) is not None:
                self._rnn[variant] = RNNScorer(models_dir, name, self.cfg.scoring.threads)
                return self._rnn[variant]
        raise ModelError(
            f"no scorer model for {'hand-frame' if order == ['hand'] else '3D' if has_z else '2D'} "
            f"landmarks in {self.models_dir} "
            f"(looked for {', '.join(MODEL_NAMES[v] for v in order)}; run scripts/train_scorer.py)"
        )

    def score(self, trial: Trial, reference: Trial | None = None) -> Result:
        """Score ``trial``; with ``reference`` (a trial of the unaffected hand) the result is
        relative to that hand's range (:mod:`device.scoring.reference`) and
        ``details["mode"]`` says which mode was used. Without ``scoring.use_z`` the absolute
        score (RNN and rule) comes from x, y only; the two hands' ranges of motion are still
        compared in 3D when both trials have z (the rule's bend angles, unlike the 3D RNN,
        hold up on real tracked video: scripts/eval_pipeline.py)."""
        result = self._score_absolute(self.prepared(trial))
        if reference is None:
            return result
        if not self.cfg.scoring.use_world:
            trial, reference = without_world(trial), without_world(reference)
        return apply_reference(result, trial, reference, self.cfg.trial)

    def primary_rnn(self) -> RNNScorer:
        """The scorer the appliance's own trials use with this config (its tracker gives
        world landmarks and z)."""
        return self.rnn_for(True, True)

    def prepared(self, trial: Trial) -> Trial:
        """The trial as this config scores it: with world landmarks (hand frame) when it has
        them and ``scoring.use_world``; else without them, and without z unless ``use_z``."""
        sc = self.cfg.scoring
        if trial.has_world and sc.use_world:
            return trial
        trial = without_world(trial)
        return trial if sc.use_z else as_2d(trial)

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
        hand = rule.details.get("method") == "hand"
        # Still closing at the end: the score could only have been higher had the recording
        # gone on — unless the fist was already reached.
        if hand and rule.details.get("end_rise", 0.0) > END_RISE and rule.score != 2:
            return Result(
                status="not_scorable",
                score=None,
                reasons=(
                    "the recording ended while the fingers were still closing, so the movement "
                    "could not be seen to its end: record again and let the recording run to its end",
                    *rule.reasons,
                ),
                details={"rule": rule.details, "reason_codes": ["stopped_early"]},
                rule_score=rule.score,
                quality=qjson,
            )
        borderline = bool(rule.details.get("borderline", False))
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
        rnn = self.rnn_for(trial.has_z, trial.has_world).score(trial)
        assert rnn.score is not None and rule.score is not None and rnn.probabilities is not None
        reasons = [*rnn.reasons, *rule.reasons]
        details: dict[str, Any] = {"rnn": rnn.details, "rule": rule.details}
        gap = abs(rnn.score - rule.score)
        if gap >= 2:
            reasons.insert(
                0,
                f"the two checks contradict each other (movement model: {rnn.score}, measured range "
                f"of motion: {rule.score}): record again or score by hand",
            )
            return Result(
                status="not_scorable",
                score=None,
                probabilities=rnn.probabilities,
                confidence=0.0,
                reasons=tuple(reasons),
                details={**details, "reason_codes": ["checks_disagree"]},
                rule_score=rule.score,
                review=True,
                quality=qjson,
            )
        if gap == 1:
            score = rule.score if hand else rnn.score
            p = float(rnn.probabilities[score])
            rule_certainty = 0.6 if borderline else 1.0
            confidence = min(DISAGREE_CAP, 0.5 * (p + rule_certainty))
            reasons.append(
                f"the movement model ({rnn.score}) and the measured range of motion ({rule.score}) "
                f"differ by one point: {score} is given with low confidence — please review"
            )
            return Result(
                status="scored",
                score=score,
                probabilities=rnn.probabilities,
                confidence=confidence,
                reasons=tuple(reasons),
                details={**details, "reason_codes": ["checks_differ"]},
                rule_score=rule.score,
                review=True,
                quality=qjson,
            )
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
        confidence = rnn.confidence
        if borderline:
            confidence = min(confidence, BORDERLINE_CAP)
            reasons.append(
                "the measured movement lies close to the boundary between two scores: please review"
            )
        return Result(
            status="scored",
            score=rnn.score,
            probabilities=rnn.probabilities,
            confidence=confidence,
            reasons=tuple(reasons),
            details=details,
            rule_score=rule.score,
            review=borderline or confidence < sc.review_confidence,
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
