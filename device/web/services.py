"""What the web page needs from the appliance: the :class:`WebServices` protocol.

The views never touch hardware or SQL; they call one ``services`` object. The composition
root (``device/app.py``) implements it over the real camera, tracker, recorder and store;
:mod:`device.web.fake` ships a complete fake (temp store, synthetic frames) for tests and
``flask --app device.web.fake run``.

An implementation **must** provide every member of :class:`WebServices`. The helpers below
do the parts that are the same for every implementation, so the root only wires:

* :class:`device.web.live.LiveFrames` — ``put(rgb, obs)`` from the tracker thread (never
  blocks), ``latest_jpeg(...)`` for the page (encodes on demand, once per frame);
* :func:`resolve_patient` — find or create the patient of a ``start_trial`` call;
* :func:`trial_outcome` — what to write with ``Store.finish_trial`` when the recorder
  reaches an outcome, in the shape the result page reads;
* :func:`measure_reference`, :func:`score_in_session` — scoring against the unaffected hand
  (issue 10): a reference trial is measured (:class:`ReferenceResult`, no 0/1/2 score), and
  an assessment is scored with the newest reference of the same **session** — the same
  patient on the same local day (the unit the history and the FHIR export group by), a
  reference of the other hand recorded before it — via ``score(trial, reference)``, i.e.
  ``Decider.score(trial, reference=...)`` on the appliance, the call ``flexscore score
  --reference`` makes;
* :func:`models_from_manifest`, :func:`disk_usage`, :func:`software_version` — the parts of
  :class:`SystemInfo`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

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
OUTCOME_STATUS = {"result": "scored", "rejected": "rejected", "cancelled": "cancelled", "error": "error"}


class StatusSnapshot(TypedDict, total=False):
    """``WebServices.status()``. Required: ``state``, ``camera``, ``fps``.

    Keys:
        state: recorder state (idle, countdown, recording, scoring, result, rejected,
            cancelled, error).
        remaining_s: seconds left in the countdown or recording, else None.
        camera: camera watchdog state (starting, ok, lost, restarting, stopped).
        fps: frames per second the tracker is processing now.
        hand_in_view: the patient's side ("left" / "right") of the hand tracked in the latest
            frame (from the model's handedness and the camera's mirroring), or None.
        patient: code of the patient of the current (or last) trial, or None.
        side: affected side of the current (or last) trial, or None.
        trial_seq: the recorder's trial counter, or None.
        reasons: reason codes of the last outcome (rejected / cancelled / error).
        reference: True when the current (or last) trial records the unaffected hand
            (a reference trial); ``side`` is then that hand's side.
        guidance: what the hand in view needs, ``{"code", "message"}`` (code ``ready`` when
            nothing; see device/trial/guidance.py), or None before the first frame.
        phase: "waiting" / "counting" (countdown: held for the hand / counting), "close" /
            "open" (recording), else None.
        prompt: the one sentence the page shows for guidance, phase or outcome, or None.
    """

    state: str
    remaining_s: float | None
    camera: str
    fps: float
    hand_in_view: str | None
    patient: str | None
    side: str | None
    trial_seq: int | None
    reasons: list[str]
    reference: bool
    guidance: dict[str, str] | None
    phase: str | None
    prompt: str | None


@dataclass(frozen=True)
class JpegFrame:
    """One encoded live-view frame (skeleton already drawn). ``seq`` grows by one per frame."""

    seq: int
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class ModelInfo:
    """One model file as the status page lists it."""

    name: str
    kind: str  # palm, landmark, scorer, …
    variant: str  # e.g. "lite int8"
    sha256: str  # first 12 hex digits
    size_bytes: int
    in_use: bool = False


@dataclass(frozen=True)
class SystemInfo:
    """The status page: what runs, how long, and how much room is left."""

    software_version: str
    uptime_s: float
    disk_path: str
    disk_total_bytes: int
    disk_free_bytes: int
    models: tuple[ModelInfo, ...] = ()
    camera: dict[str, str] = field(default_factory=dict)  # backend, device, resolution, …
    settings: dict[str, str] = field(default_factory=dict)  # read-only config shown to a clinician


@runtime_checkable
class WebServices(Protocol):
    """Everything the web page asks of the appliance (implemented by the composition root).

    Threading: every method may be called from several waitress threads at once.
    Nothing here may block the tracker: ``latest_jpeg`` reads the newest frame, never a queue.
    """

    @property
    def store(self) -> Store:
        """The open trial store (the web uses its public methods only)."""
        ...

    def status(self) -> StatusSnapshot:
        """A snapshot of the appliance (see :class:`StatusSnapshot`); cheap, never blocks."""
        ...

    def start_trial(self, patient_code: str | None, side: str | None, reference: bool = False) -> bool:
        """Start a trial (countdown first) for ``patient_code`` (found or created with
        :func:`resolve_patient`; None: no patient) and the affected ``side`` ("left",
        "right" or None for the patient's or the configured side). With ``reference`` the
        trial records the other, unaffected hand (see :func:`check_reference`). Returns
        False when a trial is already running; raises :class:`InputError` for a bad code or
        side, or a reference without a patient or side."""
        ...

    def cancel_trial(self) -> bool:
        """Cancel the running trial; False when none runs."""
        ...

    def latest_jpeg(self, newer_than: int = -1, timeout: float = 0.0) -> JpegFrame | None:
        """The newest live frame with the skeleton drawn, if its ``seq`` > ``newer_than``;
        waits up to ``timeout`` seconds for one, else None (no frame yet, or camera stalled).
        :class:`device.web.live.LiveFrames` implements exactly this."""
        ...

    def system_info(self) -> SystemInfo:
        """Software version, uptime, disk space, models and camera for the status page."""
        ...


# --------------------------------------------------------------------------- helpers


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


def models_from_manifest(models_dir: str | Path, in_use: Iterable[str] = ()) -> tuple[ModelInfo, ...]:
    """The models listed in ``models_dir/manifest.json`` (empty when there is none)."""
    used = set(in_use)
    path = Path(models_dir) / "manifest.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("no readable model manifest at %s", path)
        return ()
    out = []
    for name, entry in sorted((doc.get("models") or {}).items()):
        if not isinstance(entry, dict):
            continue
        variant = " ".join(str(entry[k]) for k in ("complexity", "precision") if entry.get(k))
        out.append(
            ModelInfo(
                name=name,
                kind=str(entry.get("kind", "")),
                variant=variant,
                sha256=str(entry.get("sha256", ""))[:12],
                size_bytes=int(entry.get("bytes", 0) or 0),
                in_use=name in used,
            )
        )
    return tuple(out)


def disk_usage(path: str | Path) -> tuple[int, int]:
    """(total, free) bytes of the file system holding ``path`` (0, 0 if unknown)."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return 0, 0
    return usage.total, usage.free


def software_version() -> str:
    """The installed flexscore version (the package's own when not installed)."""
    try:
        return metadata.version("flexscore")
    except metadata.PackageNotFoundError:
        from device import __version__

        return __version__
