"""One trial's life in the store: patients, outcome → stored record, reference trials.

* :func:`resolve_patient` — find or create the patient of a start;
* :func:`trial_outcome` — what to write with ``Store.finish_trial`` when the recorder
  reaches an outcome, in the shape the result page reads;
* :func:`measure_reference`, :func:`score_in_session` — scoring against the unaffected hand
  (issue 10): a reference trial is measured (:class:`ReferenceResult`, no 0/1/2 score), and
  an assessment is scored with the newest reference of the same **session** — the same
  patient on the same local day (the unit the history and the FHIR export group by), a
  reference of the other hand recorded before it — via ``score(trial, reference)``, i.e.
  ``Decider.score(trial, reference=...)``, the call ``flexscore score --reference`` makes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from datetime import time as dtime
from typing import TYPE_CHECKING, Any

from device.errors import InputError, StoreError
from device.store import NewScore, Patient, Store

if TYPE_CHECKING:
    from device.config import TrialConfig
    from device.scoring.reference import ReferenceProfile
    from device.store import TrialRecord
    from device.trial.recorder import StateChange, TrialInfo
    from device.trial.types import Trial

log = logging.getLogger(__name__)

SIDES = ("left", "right")
# Recorder outcome state → trial status in the store.
RULE_VERSION = "rom-rule-1"
OUTCOME_STATUS = {"result": "scored", "rejected": "rejected", "cancelled": "cancelled", "error": "error"}


def check_side(side: str | None) -> str | None:
    """``side`` as "left"/"right"/None; empty means None. Raises InputError otherwise."""
    if side in (None, ""):
        return None
    if side not in SIDES:
        raise InputError(f"the affected side must be 'left' or 'right', not {side!r}")
    return side


def check_reference(patient: Patient | None, side: str | None, default: str | None = None) -> str:
    """The affected side of a reference trial; InputError when it cannot be one: the
    reference belongs to a patient's session and needs the affected side."""
    if patient is None:
        raise InputError(
            "a reference trial of the unaffected hand needs a patient code: it is used for that "
            "patient's next trials today"
        )
    affected = side or patient.affected_side or default
    if affected is None:
        raise InputError("choose the affected side: the reference trial records the other hand")
    return affected


def resolve_patient(store: Store, code: str | None, side: str | None) -> Patient | None:
    """The patient with ``code``, created (with ``side`` as affected side) if new.

    None or an empty code means "no patient". Raises :class:`InputError` for a code the
    store refuses (it must be a pseudonym: 1-32 letters, digits, ``_.-``)."""
    side = check_side(side)
    code = (code or "").strip()
    if not code:
        return None
    found = store.find_patient(code)
    if found is not None:
        return found
    try:
        pid = store.add_patient(code, side)
    except StoreError as exc:
        found = store.find_patient(code)  # created meanwhile by another request
        if found is not None:
            return found
        raise InputError(str(exc)) from exc
    patient = store.get_patient(pid)
    assert patient is not None
    return patient


@dataclass(frozen=True)
class TrialOutcome:
    """Arguments of ``Store.finish_trial`` for one recorder outcome."""

    status: str
    trial: Trial | None
    quality: dict[str, Any] | None
    reasons: list[dict[str, str]]
    score: NewScore | None
    finished_at: datetime | None
    profile: dict[str, Any] | None = None  # a reference trial's measured range of motion


def trial_outcome(
    change: StateChange, *, model_version: str | None = None, rule_version: str | None = None
) -> TrialOutcome | None:
    """What to store when the recorder enters an outcome state (else None).

    The result page reads exactly this: trial ``reasons`` [{code, message}], ``quality``
    (the gates' report), and a score whose ``detail`` holds ``reasons`` (the scorer's
    sentences) and ``details`` (its measured values). A not-scorable result has no score
    row (the store only keeps 0/1/2) but keeps the scorer's sentences in the reasons.
    A score records its mode (``details["mode"]``, "absolute" when absent) and the reference
    trial it was compared with (``details["reference_trial_id"]``, from
    :func:`score_in_session`); a reference trial stores its profile instead of a score.
    """
    status = OUTCOME_STATUS.get(str(change.new))
    info = change.info
    if status is None or info is None:
        return None
    reasons = [{"code": r.code, "message": r.message} for r in info.reasons]
    quality = info.quality.to_json() if info.quality is not None else None
    result = info.result
    score: NewScore | None = None
    profile: dict[str, Any] | None = None
    if result is not None and info.is_reference:
        profile = (getattr(result, "details", None) or {}).get("reference")
    if result is not None:
        rq = getattr(result, "quality", None)
        if rq:
            quality = dict(rq)
        res_score = getattr(result, "score", None)
        sentences = [str(s) for s in getattr(result, "reasons", ()) or ()]
        details = dict(getattr(result, "details", {}) or {})
        if res_score in (0, 1, 2):
            probs = getattr(result, "probabilities", None)
            score = NewScore(
                final_score=int(res_score),
                model_score=int(res_score) if probs is not None else None,
                rule_score=getattr(result, "rule_score", None),
                probabilities=tuple(float(p) for p in probs) if probs is not None else None,
                confidence=float(getattr(result, "confidence", 0.0)),
                model_version=model_version,
                rule_version=rule_version,
                review=bool(getattr(result, "review", False)),
                detail={"reasons": sentences, "details": details},
                mode=str(details.get("mode") or "absolute"),
                reference_trial_id=details.get("reference_trial_id"),
            )
        elif status == "rejected":
            known = {r["message"] for r in reasons}
            reasons += [{"code": "not_scorable", "message": s} for s in sentences if s not in known]
    return TrialOutcome(status, info.trial, quality, reasons, score, info.finished_at, profile)


def stored_outcome(
    change: StateChange, model_version: Callable[[], str], item: str = "mass_flexion"
) -> TrialOutcome | None:
    """:func:`trial_outcome` with the version of the model that made the score (the 2D
    scorer's for a trial without z, "rule-only" without an RNN), else ``model_version()``,
    and the version of ``item``'s rule."""
    from device.items import ITEMS

    details = getattr(change.info.result if change.info else None, "details", None) or {}
    version = (details.get("rnn") or {}).get("version") or ("rule-only" if details else None)
    spec = ITEMS.get(item)
    rule_version = spec.rule_version if spec is not None else RULE_VERSION
    return trial_outcome(change, model_version=version or model_version(), rule_version=rule_version)


# --------------------------------------------------------------------------- reference


@dataclass(frozen=True)
class ReferenceResult:
    """What a reference trial yields: the unaffected hand's range, no 0/1/2 score.

    The recorder treats it like a result (``scorable``: the hand can serve as the
    reference) or, when unusable, like a not-scorable one with its ``reasons``."""

    profile: ReferenceProfile
    score: None = None

    @property
    def scorable(self) -> bool:
        return self.profile.usable

    @property
    def reasons(self) -> tuple[Any, ...]:
        from device.trial.quality import QualityReason

        if not self.profile.usable:
            return tuple(QualityReason("reference_unusable", r) for r in self.profile.reasons)
        return (f"reference recorded: {finger_text(self.profile.peak)} of a full fist",)

    @property
    def quality(self) -> dict[str, Any]:
        return self.profile.quality

    @property
    def details(self) -> dict[str, Any]:
        return {"reference": self.profile.to_json()}


def finger_text(values: Iterable[float]) -> str:
    """ "index 80%, middle 75%, …" for per-finger shares (index…pinky)."""
    from device.scoring.rules import FINGERS

    return ", ".join(f"{n} {float(v):.0%}" for n, v in zip(FINGERS, values, strict=False))


def measure_reference(trial: Trial, cfg: TrialConfig) -> ReferenceResult:
    """Measure a reference trial (its ``side`` is the unaffected hand's) with
    :func:`device.scoring.reference.reference_profile`, as scoring will when it is used."""
    from device.scoring.reference import reference_profile
    from device.trial.recorder import other_side

    affected = other_side(trial.side) if trial.side is not None else cfg.side
    return ReferenceResult(reference_profile(trial, dataclasses.replace(cfg, side=affected)))


def session_start(at: datetime) -> datetime:
    """Local midnight of ``at``'s day: a session is one patient's trials on one local day."""
    return datetime.combine(at.astimezone().date(), dtime.min).astimezone()


def find_session_reference(store: Store, info: TrialInfo) -> TrialRecord | None:
    """The reference trial an assessment is scored against (see the module doc), or None."""
    from device.trial.recorder import other_side

    unaffected = other_side(info.side)
    if info.is_reference or info.patient_id is None or unaffected is None:
        return None
    return store.session_reference(
        info.patient_id, unaffected, session_start(info.started_at), before=info.started_at
    )


def current_reference(store: Store, patient_code: str | None, side: str | None) -> TrialRecord | None:
    """The reference the next assessment of ``patient_code`` (affected ``side``, else the
    patient's) started now would be scored against, or None (the live page shows it)."""
    from device.trial.recorder import other_side

    code = (patient_code or "").strip()
    patient = store.find_patient(code) if code else None
    affected = side or (patient.affected_side if patient else None)
    if patient is None or affected not in SIDES:
        return None
    now = datetime.now().astimezone()
    return store.session_reference(patient.id, str(other_side(affected)), session_start(now))  # type: ignore[arg-type]


def score_in_session(
    store: Store, trial: Trial, info: TrialInfo, score: Callable[[Trial, Trial | None], Any]
) -> Any:
    """Score an assessment with its session's reference (``score(trial, reference)``), noting
    the reference trial's id in ``details["reference_trial_id"]``; without a reference it is
    ``score(trial, None)`` (the absolute mode). A reference whose landmarks cannot be read,
    or a store that cannot be asked, leaves the absolute mode with that reason."""
    try:
        ref_rec = find_session_reference(store, info)
    except StoreError as exc:  # e.g. locked by a maintainer's sqlite3: score, say why
        log.error("cannot look up the session's reference trial: %s", exc)
        result = score(trial, None)
        why = f"the session's reference trial could not be looked up ({exc}): scored in the absolute mode"
        return dataclasses.replace(result, reasons=(*result.reasons, why))
    if ref_rec is None:
        return score(trial, None)
    try:
        reference = store.load_trial(ref_rec.id)
    except StoreError as exc:
        log.warning("reference trial %d unreadable: %s", ref_rec.id, exc)
        result = score(trial, None)
        why = f"the reference trial {ref_rec.id} could not be read ({exc}): scored in the absolute mode"
        details = {**result.details, "mode": "absolute", "reference_trial_id": ref_rec.id}
        return dataclasses.replace(result, reasons=(*result.reasons, why), details=details)
    result = score(trial, reference)
    log.info("trial scored against reference trial %d (%s mode)", ref_rec.id, result.details.get("mode"))
    return dataclasses.replace(result, details={**result.details, "reference_trial_id": ref_rec.id})
