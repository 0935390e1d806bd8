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
* :func:`models_from_manifest`, :func:`disk_usage`, :func:`software_version` — the parts of
  :class:`SystemInfo`.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

from device.errors import InputError, StoreError
from device.store import NewScore, Patient, Store

if TYPE_CHECKING:
    from device.trial.recorder import StateChange
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

    def start_trial(self, patient_code: str | None, side: str | None) -> bool:
        """Start a trial (countdown first) for ``patient_code`` (found or created with
        :func:`resolve_patient`; None: no patient) and the affected ``side`` ("left",
        "right" or None for the configured side). Returns False when a trial is already
        running; raises :class:`InputError` for a bad code or side."""
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


def trial_outcome(
    change: StateChange, *, model_version: str | None = None, rule_version: str | None = None
) -> TrialOutcome | None:
    """What to store when the recorder enters an outcome state (else None).

    The result page reads exactly this: trial ``reasons`` [{code, message}], ``quality``
    (the gates' report), and a score whose ``detail`` holds ``reasons`` (the scorer's
    sentences) and ``details`` (its measured values). A not-scorable result has no score
    row (the store only keeps 0/1/2) but keeps the scorer's sentences in the reasons.
    """
    status = OUTCOME_STATUS.get(str(change.new))
    info = change.info
    if status is None or info is None:
        return None
    reasons = [{"code": r.code, "message": r.message} for r in info.reasons]
    quality = info.quality.to_json() if info.quality is not None else None
    result = info.result
    score: NewScore | None = None
    if result is not None:
        rq = getattr(result, "quality", None)
        if rq:
            quality = dict(rq)
        res_score = getattr(result, "score", None)
        sentences = [str(s) for s in getattr(result, "reasons", ()) or ()]
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
                detail={"reasons": sentences, "details": getattr(result, "details", {}) or {}},
            )
        elif status == "rejected":
            known = {r["message"] for r in reasons}
            reasons += [{"code": "not_scorable", "message": s} for s in sentences if s not in known]
    return TrialOutcome(status, info.trial, quality, reasons, score, info.finished_at)


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
