"""The fleet's messages: topics and JSON payloads (docs/FLEET.md). Pure, except that the trial
messages read the stored trial through the store they are given.

Every queued message has a ``message_id`` (a random UUID made once, when it is queued): the
same message sent again after a lost acknowledgement or a restart carries the same id, so a
consumer drops duplicates by ``message_id``. A trial's messages carry its ``trial_uuid``;
the first ("outcome") reports how it ended, each clinician label adds one more ("label",
``revision`` = the number of labels so far): the newest state of a trial is its message with
the highest ``revision``.

Landmarks, images and free text (a clinician's comment) are never published; a patient is
named by the pseudonymous code only.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from device.store import Label, OutboxMessage, SaveEvent, Store, TrialRecord

TRIAL_SCHEMA = "flexscore-trial-1"
STATUS_SCHEMA = "flexscore-status-1"
DEFAULT_ITEM = "mass_flexion"  # until trials carry their Fugl-Meyer item
AVAILABLE, STATUS, TRIALS, TRIALS_FHIR = "available", "status", "trials", "trials/fhir"
ONLINE, OFFLINE = "online", "offline"
# meta.tag systems of the FHIR message: which trial it was sent for, the message's id, the unit
TAG_TRIAL_UUID = "urn:flexscore:trial-uuid"
TAG_MESSAGE_ID = "urn:flexscore:message-id"
TAG_UNIT_ID = "urn:flexscore:unit-id"


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat(timespec="milliseconds") if at is not None else None


def label_json(label: Label | None) -> dict[str, Any] | None:
    """A clinician label without its free-text comment (it may name someone)."""
    if label is None:
        return None
    return {"score": label.score, "clinician": label.clinician, "created_at": iso(label.created_at)}


def trial_payload(
    trial: TrialRecord,
    *,
    unit_id: str,
    message_id: str,
    patient_code: str | None,
    labels: list[Label],
    software_version: str,
) -> dict[str, Any]:
    """The ``<prefix>/<unit>/trials`` message for one stored trial (schema in docs/FLEET.md)."""
    s = trial.score
    detail = (s.detail or {}) if s is not None else {}
    rnn = detail.get("rnn") if isinstance(detail.get("rnn"), dict) else {}
    return {
        "schema": TRIAL_SCHEMA,
        "message_id": message_id,
        "unit_id": unit_id,
        "event": "label" if labels else "outcome",
        "revision": len(labels),
        "trial_uuid": trial.uuid,
        "trial_id": trial.id,
        "patient_code": patient_code,
        "item": getattr(trial, "item", None) or DEFAULT_ITEM,
        "side": trial.side,
        "role": trial.role,
        "status": trial.status,
        "score": s.final_score if s is not None and trial.status == "scored" else None,
        "model_score": s.model_score if s is not None else None,
        "rule_score": s.rule_score if s is not None else None,
        "probabilities": list(s.probabilities) if s is not None and s.probabilities is not None else None,
        "confidence": s.confidence if s is not None else None,
        "review": bool(s.review) if s is not None else None,
        "mode": (s.mode or "absolute") if s is not None else None,
        "reasons": [{"code": r.get("code"), "message": r.get("message")} for r in trial.reasons],
        "model_versions": {
            "scorer": s.model_version if s is not None else None,
            "rule": s.rule_version if s is not None else None,
            "scorer_sha256": (rnn or {}).get("sha256"),
        },
        "label": label_json(labels[-1] if labels else None),
        "started_at": iso(trial.started_at),
        "finished_at": iso(trial.finished_at),
        "software_version": software_version,
    }


def fhir_payload(store: Store, trial: TrialRecord) -> dict[str, Any] | None:
    """The FHIR QuestionnaireResponse of the trial's session (its patient, its local day) as
    the export makes it (``/export/fhir/<code>/<day>.json``), without free-text comments; None
    for a trial without a patient (a response needs a subject)."""
    from device.web.fhir import questionnaire_response
    from device.web.queries import TrialFilter, iter_trials, local_day, sessions, trial_views

    if trial.patient_id is None:
        return None
    patient = store.get_patient(trial.patient_id)
    if patient is None:
        return None
    day = local_day(trial.started_at)
    found = sessions(trial_views(store, list(iter_trials(store, TrialFilter(patient, None, day, day)))))
    if not found:
        return None
    doc = questionnaire_response(found[0])
    _drop_comments(doc)
    return doc


def _drop_comments(node: Any) -> None:
    if isinstance(node, dict):
        items = node.get("item")
        if isinstance(items, list):
            node["item"] = [
                i for i in items if not (isinstance(i, dict) and i.get("linkId") == "clinician-comment")
            ]
        for value in node.values():
            _drop_comments(value)
    elif isinstance(node, list):
        for value in node:
            _drop_comments(value)


def trial_messages(
    store: Store, event: SaveEvent, *, unit_id: str, software_version: str
) -> list[OutboxMessage]:
    """A store save hook's messages for one saved trial or label: the trial message and, when
    the trial has a patient, its session's FHIR resource."""
    trial = store.get_trial(event.trial_id)
    if trial is None or trial.status in ("recording", "scoring"):
        return []
    patient = store.get_patient(trial.patient_id) if trial.patient_id is not None else None
    labels = store.labels_for(trial.id)
    message_id = str(uuid.uuid4())
    doc = trial_payload(
        trial,
        unit_id=unit_id,
        message_id=message_id,
        patient_code=patient.code if patient else None,
        labels=labels,
        software_version=software_version,
    )
    out = [OutboxMessage(message_id, "trial", TRIALS, dumps(doc))]
    fhir = fhir_payload(store, trial)
    if fhir is not None:
        fhir_id = str(uuid.uuid4())
        fhir["meta"] = {
            "tag": [
                {"system": TAG_TRIAL_UUID, "code": trial.uuid},
                {"system": TAG_MESSAGE_ID, "code": fhir_id},
                {"system": TAG_UNIT_ID, "code": unit_id},
            ]
        }
        out.append(OutboxMessage(fhir_id, "trial", TRIALS_FHIR, dumps(fhir)))
    return out


def status_payload(
    snapshot: dict[str, Any], *, unit_id: str, message_id: str, now: datetime
) -> dict[str, Any]:
    """The retained ``<prefix>/<unit>/status`` message from the publisher's snapshot."""
    return {
        "schema": STATUS_SCHEMA,
        "message_id": message_id,
        "unit_id": unit_id,
        "at": iso(now),
        **snapshot,
    }


def status_message(snapshot: dict[str, Any], *, unit_id: str, now: datetime) -> OutboxMessage:
    message_id = str(uuid.uuid4())
    doc = status_payload(snapshot, unit_id=unit_id, message_id=message_id, now=now)
    return OutboxMessage(message_id, "status", STATUS, dumps(doc), retain=True)
