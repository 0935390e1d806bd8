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
3. The item's rule (mass flexion: :mod:`device.scoring.rules`) always runs: it is the
   cross-check and the explanation. The item says when its movement was still under way
   when the recording ended (mass flexion, hand frame: still closing, short of a fist) →
   ``not_scorable`` ("stopped too early"); a rule may also find the trial not scorable for
   its item (e.g. mass extension: the hand never closed, so no opening could be judged).
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

With ``scoring.use_rnn = false`` — or when the item has no scorer model for the trial's
landmarks (variant) — the rule decides alone and every result is flagged for review.

**Items** (:mod:`device.items`): ``Decider.score(trial, item=...)`` scores one assessment
item (default ``mass_flexion``) with that item's rule, models and reference mode. The quality
gates judge the whole recording; the rule and the RNN judge the item's part of it
(``AssessmentItem.segment``: the whole trial for mass flexion, from the most closed frame on
for mass extension), so one recording "make a fist, then open your hand fully" gives both
items (:meth:`Decider.score_items`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.config import Config, TrialConfig
from device.errors import InputError, ModelError
from device.items import DEFAULT_ITEM, AssessmentItem, get_item
from device.items.flexion import END_RISE as END_RISE
from device.scoring.installed import scorer_dir
from device.scoring.reference import as_2d, without_world
from device.scoring.rnn import RNNScorer, scorer_entry
from device.scoring.types import Result
from device.trial.quality import check_quality
from device.trial.types import Trial

log = logging.getLogger(__name__)

DISAGREE_CAP = 0.5  # confidence at most this when the RNN and the rule differ by one point
BORDERLINE_CAP = 0.7  # … and when the rule's measurement lies near one of its thresholds
ItemArg = str | AssessmentItem


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
        self.rule = get_item(DEFAULT_ITEM).rule  # the default item's rule
        self._rnn: dict[str, RNNScorer] = {}  # by model name

    def rnn_for(self, has_z: bool, has_world: bool = False, item: ItemArg = DEFAULT_ITEM) -> RNNScorer:
        """The item's RNN for a trial: the hand-frame model when it has world landmarks and
        ``scoring.use_world`` is set; else the 3D model when it has z, ``scoring.use_z`` is
        set and the model exists, else 2D. :class:`ModelError` when there is none."""
        rnn = self._rnn_or_none(has_z, has_world, get_item(item))
        if rnn is None:
            spec = get_item(item)
            raise ModelError(f"the item '{spec.key}' has no scorer model for these landmarks")
        return rnn

    def _variants(self, has_z: bool, has_world: bool) -> list[str]:
        if has_world and self.cfg.scoring.use_world:
            return ["hand"]
        return ["3d", "2d"] if has_z and self.cfg.scoring.use_z else ["2d"]

    def _rnn_or_none(self, has_z: bool, has_world: bool, item: AssessmentItem) -> RNNScorer | None:
        """The RNN as :meth:`rnn_for`, or None when the item defines no model for any of the
        variants the trial could use (it is then scored by its rule alone)."""
        order = [v for v in self._variants(has_z, has_world) if item.model_name(v)]
        if not order:
            return None
        for variant in order:
            name = item.models[variant]
            if name in self._rnn:
                return self._rnn[name]
            models_dir = scorer_dir(self.models_dir, self.state_dir, name)
            if scorer_entry(models_dir, name) is not None:
                self._rnn[name] = RNNScorer(models_dir, name, self.cfg.scoring.threads)
                return self._rnn[name]
        raise ModelError(
            f"no scorer model for {'hand-frame' if order == ['hand'] else '3D' if has_z else '2D'} "
            f"landmarks in {self.models_dir} "
            f"(looked for {', '.join(item.models[v] for v in order)}; run scripts/train_scorer.py"
            + ("" if item.key == DEFAULT_ITEM else f" --item {item.key}")
            + ")"
        )

    def score(self, trial: Trial, reference: Trial | None = None, item: ItemArg = DEFAULT_ITEM) -> Result:
        """Score ``trial``; with ``reference`` (a trial of the unaffected hand) the result is
        relative to that hand's range (:mod:`device.scoring.reference`) and
        ``details["mode"]`` says which mode was used. Without ``scoring.use_z`` the absolute
        score (RNN and rule) comes from x, y only; the two hands' ranges of motion are still
        compared in 3D when both trials have z (the rule's bend angles, unlike the 3D RNN,
        hold up on real tracked video: scripts/eval_pipeline.py).

        ``item``: the assessment item (key or spec, :mod:`device.items`) the trial is scored
        for; :class:`device.items.UnknownItemError` for an unknown key."""
        spec = get_item(item)
        result = self._score_absolute(self.prepared(trial), spec)
        if reference is None:
            return result
        if not self.cfg.scoring.use_world:
            trial, reference = without_world(trial), without_world(reference)
        if spec.reference is None:
            return dataclasses.replace(
                result,
                reasons=(*result.reasons, f"{spec.name} has no reference mode: scored in the absolute mode"),
                details={**result.details, "mode": "absolute"},
            )
        return spec.reference(result, trial, reference, self.cfg.trial)

    def score_items(
        self, trial: Trial, items: Iterable[ItemArg], reference: Trial | None = None
    ) -> list[ItemResult]:
        """One result per item from one recording (e.g. "make a fist, then open your hand
        fully" → mass flexion and mass extension), in the order given."""
        specs = [get_item(i) for i in items]
        if not specs:
            raise InputError("no assessment item to score")
        return [ItemResult(s, self.score(trial, reference=reference, item=s)) for s in specs]

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

    def _trial_cfg(self, item: AssessmentItem) -> TrialConfig:
        tc = self.cfg.trial
        if item.min_duration_s is None:
            return tc
        return dataclasses.replace(tc, min_duration_s=min(tc.min_duration_s, item.min_duration_s))

    def _score_absolute(self, recording: Trial, item: AssessmentItem) -> Result:
        quality = check_quality(recording, self._trial_cfg(item))
        qjson = quality.to_json()
        if not quality.ok:
            hint = item.no_hand_hint if "no_hand" in quality.codes else None
            return Result(
                status="not_scorable",
                score=None,
                reasons=tuple(r.message for r in quality.reasons) + ((hint,) if hint else ()),
                details={"reason_codes": list(quality.codes)},
                quality=qjson,
            )
        trial = item.segment(recording)  # the item's part of the recording
        rule = item.rule.score(trial)
        sc = self.cfg.scoring
        hand = rule.details.get("method") == "hand"
        if rule.status != "scored" or rule.score is None:
            codes = rule.details.get("reason_codes") or ["rule_not_scorable"]
            return Result(
                status="not_scorable",
                score=None,
                reasons=rule.reasons,
                details={"rule": rule.details, "reason_codes": list(codes)},
                quality=qjson,
            )
        # Still under way at the end: the score could only have been higher had the recording
        # gone on (mass flexion: still closing, short of a fist).
        unfinished = item.unfinished(rule)
        if unfinished:
            return Result(
                status="not_scorable",
                score=None,
                reasons=(unfinished, *rule.reasons),
                details={"rule": rule.details, "reason_codes": ["stopped_early"]},
                rule_score=rule.score,
                quality=qjson,
            )
        borderline = bool(rule.details.get("borderline", False))
        model = self._rnn_or_none(trial.has_z, trial.has_world, item) if sc.use_rnn else None
        if model is None:
            why = (
                "scored by the rule alone (RNN disabled): review"
                if not sc.use_rnn
                else f"scored by the rule alone ({item.name} has no movement model for these "
                "landmarks): review"
            )
            return Result(
                status="scored",
                score=rule.score,
                confidence=0.0,
                reasons=(*rule.reasons, why),
                details={"rule": rule.details},
                rule_score=rule.score,
                review=True,
                quality=qjson,
            )
        rnn = model.score(trial)
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


@dataclass(frozen=True)
class ItemResult:
    """The result of one assessment item (of a recording that may give several)."""

    item: AssessmentItem
    result: Result

    def to_json(self) -> dict[str, Any]:
        """The result's document with the item named first (``item``, ``item_name``)."""
        return {"item": self.item.key, "item_name": self.item.name, **self.result.to_json()}


@functools.lru_cache(maxsize=4)
def _cached_decider(cfg: Config) -> Decider:
    return Decider(cfg)


def score_trial(trial: Trial, cfg: Config | None = None) -> Result:
    """Score one trial with the models of ``cfg`` (loaded once per config and cached).

    ``Result.to_json()`` gives the document the CLI prints.
    """
    return _cached_decider(cfg or Config()).score(trial)


def score_items(trial: Trial, items: Sequence[ItemArg], cfg: Config | None = None) -> list[ItemResult]:
    """One :class:`ItemResult` per item for one recording (models of ``cfg``, cached)."""
    return _cached_decider(cfg or Config()).score_items(trial, items)
