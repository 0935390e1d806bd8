"""Read-side helpers over the store's public API: filtered trial lists, sessions, export rows.

No SQL here: everything goes through :class:`device.store.Store` methods. Date filters
are applied in Python (the store filters by patient and status), which is plenty for the
few thousand trials one appliance records.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from device.store import Label, Patient, Store, TrialRecord
from device.web.i18n import N_

log = logging.getLogger(__name__)

PAGE = 500
SCORE_TEXT = {0: "No flexion", 1: "Partial flexion", 2: "Full flexion"}  # English: exports
STATUS_TEXT = {  # English msgids: the pages translate them (device/web/i18n.py)
    "scored": N_("Scored"),
    "rejected": N_("Not scorable"),
    "cancelled": N_("Cancelled"),
    "error": N_("Error"),
    "interrupted": N_("Interrupted"),
    "recording": N_("Recording"),
    "scoring": N_("Scoring"),
}


@dataclass(frozen=True)
class TrialFilter:
    """History / export filters (all optional)."""

    patient: Patient | None = None
    status: str | None = None
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    item: str | None = None  # an assessment item key (device/items)

    def matches(self, trial: TrialRecord) -> bool:
        day = local_day(trial.started_at)
        if self.date_from is not None and day < self.date_from:
            return False
        return not (self.date_to is not None and day > self.date_to)


def local_day(at: datetime) -> date:
    """The appliance's local calendar day of a (UTC) timestamp."""
    return at.astimezone().date()


def iter_trials(store: Store, flt: TrialFilter) -> Iterator[TrialRecord]:
    """Trials matching ``flt``, newest first."""
    offset = 0
    pid = flt.patient.id if flt.patient is not None else None
    while True:
        page = store.list_trials(limit=PAGE, offset=offset, patient_id=pid, status=flt.status, item=flt.item)
        for trial in page:
            if flt.matches(trial):
                yield trial
        if len(page) < PAGE:
            return
        offset += PAGE


@dataclass(frozen=True)
class TrialView:
    """A trial with what the pages show beside it."""

    trial: TrialRecord
    patient_code: str | None
    labels: list[Label] = field(default_factory=list)

    @property
    def label(self) -> Label | None:
        """The current clinician label: the newest one counts (a later label corrects an
        earlier one); the earlier ones stay as the audit trail (:attr:`earlier_labels`)."""
        return self.labels[-1] if self.labels else None

    @property
    def earlier_labels(self) -> list[Label]:
        """The labels the current one replaced, oldest first."""
        return self.labels[:-1]

    @property
    def auto_score(self) -> int | None:
        s = self.trial.score
        return s.final_score if s is not None and self.trial.status == "scored" else None

    @property
    def mode(self) -> str | None:
        """How the automatic score was made: "absolute" or "reference" (against the
        unaffected hand); None without a score (and for reference trials)."""
        s = self.trial.score
        if s is None or self.trial.is_reference:
            return None
        return s.mode or ((s.detail or {}).get("details") or {}).get("mode") or "absolute"

    @property
    def reference_trial_id(self) -> int | None:
        s = self.trial.score
        return s.reference_trial_id if s is not None and not self.trial.is_reference else None

    @property
    def effective_score(self) -> int | None:
        """The clinician's score when there is one, else the automatic score."""
        if self.label is not None:
            return self.label.score
        return self.auto_score

    def to_json(self) -> dict[str, Any]:
        t = self.trial
        doc = t.to_json()
        s = t.score
        detail = (s.detail or {}) if s is not None else {}
        doc.update(
            patient_code=self.patient_code,
            anonymous=t.patient_id is None,
            quality=t.quality,
            has_landmarks=t.has_landmarks,
            reference_profile=t.profile if t.is_reference else None,
            automatic=None
            if s is None
            else {
                "score": s.final_score,
                "probabilities": list(s.probabilities) if s.probabilities is not None else None,
                "confidence": s.confidence,
                "rule_score": s.rule_score,
                "model_version": s.model_version,
                "rule_version": s.rule_version,
                "review": s.review,
                "reasons": detail.get("reasons", []),
                "mode": self.mode,
                "reference_trial_id": self.reference_trial_id,
                "reference": (detail.get("details") or {}).get("reference"),
            },
            label=label_json(self.label, current=True) if self.label is not None else None,
            label_history=[label_json(lab, current=lab is self.label) for lab in self.labels],
        )
        return doc


def label_json(lab: Label, *, current: bool) -> dict[str, Any]:
    """One clinician label as the API and the JSON export show it."""
    return {
        "id": lab.id,
        "score": lab.score,
        "comment": lab.note,
        "clinician": lab.clinician,
        "created_at": lab.created_at.isoformat(),
        "current": current,
    }


class PatientCodes:
    """patient id → code, looked up once per request."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._codes: dict[int, str] = {}

    def code(self, patient_id: int | None) -> str | None:
        if patient_id is None:
            return None
        if patient_id not in self._codes:
            p = self._store.get_patient(patient_id)
            self._codes[patient_id] = p.code if p else f"#{patient_id}"
        return self._codes[patient_id]


def trial_views(store: Store, trials: list[TrialRecord]) -> list[TrialView]:
    codes = PatientCodes(store)
    return [TrialView(t, codes.code(t.patient_id), store.labels_for(t.id)) for t in trials]


def trial_view(store: Store, trial_id: int) -> TrialView | None:
    t = store.get_trial(trial_id)
    if t is None:
        return None
    return trial_views(store, [t])[0]


# --------------------------------------------------------------------------- CSV

CSV_COLUMNS = (
    "trial_id", "patient_code", "side", "status", "started_at", "finished_at",
    "score", "p0", "p1", "p2", "confidence", "rule_score", "review", "model_version",
    "clinician_score", "clinician_comment", "reason_codes", "role", "mode", "reference_trial_id",
    "clinician", "clinician_labelled_at", "earlier_labels", "item", "recording_of", "anonymous",
)  # fmt: skip
# item: the assessment item (device/items); recording_of: the first trial of a recording scored
# for several items; anonymous: true for a trial without a patient (anonymous screening).
# clinician_score / clinician_comment / clinician / clinician_labelled_at: the current (newest)
# label. earlier_labels: the labels it replaced, oldest first, as a JSON list of
# {score, comment, clinician, created_at} (no comment is lost).


def _cell(value: Any) -> str:
    """Text for a CSV cell; formula-looking text is quoted so spreadsheets don't run it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}"
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _earlier(v: TrialView) -> str | None:
    if not v.earlier_labels:
        return None
    return json.dumps(
        [
            {"score": lab.score, "comment": lab.note, "clinician": lab.clinician,
             "created_at": lab.created_at.isoformat()}
            for lab in v.earlier_labels
        ],
        ensure_ascii=False,
    )  # fmt: skip


def trials_csv(views: list[TrialView]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for v in views:
        t, s, lab = v.trial, v.trial.score, v.label
        probs = list(s.probabilities) if s is not None and s.probabilities is not None else [None] * 3
        row = [
            t.id, v.patient_code, t.side, t.status, t.started_at.isoformat(),
            t.finished_at.isoformat() if t.finished_at else None,
            s.final_score if s else None, *probs[:3], s.confidence if s else None,
            s.rule_score if s else None, s.review if s else None, s.model_version if s else None,
            lab.score if lab else None, lab.note if lab else None,
            ";".join(r.get("code", "") for r in t.reasons), t.role, v.mode, v.reference_trial_id,
            lab.clinician if lab else None, lab.created_at.isoformat() if lab else None,
            _earlier(v), t.item, t.recording_of, t.patient_id is None,
        ]  # fmt: skip
        w.writerow([_cell(c) for c in row])
    return buf.getvalue()


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class Session:
    """One patient's trials on one (local) day: the unit of a FHIR QuestionnaireResponse."""

    patient_code: str
    day: date
    trials: list[TrialView]  # oldest first

    @property
    def key(self) -> str:
        return f"{self.patient_code}/{self.day.isoformat()}"


def sessions(views: list[TrialView]) -> list[Session]:
    """Group trials with a patient into sessions, newest session first."""
    groups: dict[tuple[str, date], list[TrialView]] = {}
    for v in views:
        if v.patient_code is None:
            continue
        groups.setdefault((v.patient_code, local_day(v.trial.started_at)), []).append(v)
    out = [
        Session(code, day, sorted(items, key=lambda v: v.trial.started_at))
        for (code, day), items in groups.items()
    ]
    return sorted(out, key=lambda s: (s.day, s.patient_code), reverse=True)
