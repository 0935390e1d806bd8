"""HL7 FHIR R4 ``QuestionnaireResponse`` for one session of the Fugl-Meyer hand items.

A session is one patient's trials on one day (:class:`device.web.queries.Session`). The
response answers:

* ``affected-side`` — "left"/"right" (valueString);
* one answer per assessment item (:mod:`device.items`, its ``fhir_code`` as ``linkId``):
  ``mass-flexion`` always, ``mass-extension`` (and any other item) when the session assessed
  it — the session's score 0/1/2 for that item (valueInteger): its best trial, each trial
  counted with the clinician's score when there is one, else the automatic score; the
  answer's nested ``score-source`` says which ("clinician" or "automatic") and
  ``score-meaning`` what the score means for that item. No scorable trial → no answer (the
  item is present without one, as FHIR allows);
* ``reference-used`` — whether the session's score was made compared with the patient's
  unaffected hand (valueBoolean; issue 10): true when the trial that gave the session
  score was scored in the reference mode;
* one ``trial`` group per trial: id, start time, status, ``trial-item`` (the item key), role ("assessment" or
  "reference": a recording of the unaffected hand, which never gives the session score),
  automatic score, scoring mode ("absolute"/"reference") and the reference trial's id,
  confidence, rule score, review flag, reasons, and the current clinician label (the newest:
  ``clinician-score``, ``clinician-comment``, ``clinician-labelled-at``, ``clinician-name``);
  labels it replaced stay in ``clinician-label-history`` (one ``earlier-label`` group each,
  oldest first, with ``earlier-score`` / ``-comment`` / ``-labelled-at`` / ``-name``).

The subject is referenced by the pseudonymous patient code only (an identifier), never a
name. The structure uses nothing that differs between R4 (4.0.1) and R4B (4.3.0); tests
validate it with ``fhir.resources`` (its R4B models).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from device.items import DEFAULT_ITEM, ITEMS, MASS_FLEXION, AssessmentItem
from device.store import Label
from device.web.queries import Session, TrialView
from device.web.services import software_version

QUESTIONNAIRE = "urn:flexscore:questionnaire:fma-ue-hand|2"  # |2: one answer per item (issue 17)
PATIENT_SYSTEM = "urn:flexscore:patient-code"
SESSION_SYSTEM = "urn:flexscore:session"
ITEM_TEXT = MASS_FLEXION.fhir_display
_ID_OK = re.compile(r"[^A-Za-z0-9.\-]")


def _dt(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def _item(link_id: str, text: str, answer: dict[str, Any] | None) -> dict[str, Any]:
    item: dict[str, Any] = {"linkId": link_id, "text": text}
    if answer is not None:
        item["answer"] = [answer]
    return item


def _label_items(lab: Label, prefix: str, who: str) -> list[dict[str, Any]]:
    """A clinician label's score, comment, time and clinician as QuestionnaireResponse items."""
    answer = {"valueInteger": lab.score} if lab.score is not None else {"valueString": "not scorable"}
    items = [_item(f"{prefix}-score", f"{who} score", answer)]
    if lab.note:
        items.append(_item(f"{prefix}-comment", f"{who} comment", {"valueString": lab.note}))
    items.append(_item(f"{prefix}-labelled-at", f"{who} score given", {"valueDateTime": _dt(lab.created_at)}))
    items.append(_item(f"{prefix}-name", f"{who} score given by", {"valueString": lab.clinician}))
    return items


def _trial_group(v: TrialView) -> dict[str, Any]:
    t, s, lab = v.trial, v.trial.score, v.label
    items = [
        _item("trial-id", "Trial number on the device", {"valueInteger": t.id}),
        _item("trial-started", "Recording started", {"valueDateTime": _dt(t.started_at)}),
        _item("trial-status", "Outcome", {"valueString": t.status}),
        _item("trial-role", "Role (assessment of the affected hand, or reference: the unaffected hand)",
              {"valueString": t.role}),
        _item("trial-item", "Assessment item", {"valueString": t.item}),
    ]
    if v.auto_score is not None and s is not None:
        items.append(_item("automatic-score", "Automatic score", {"valueInteger": v.auto_score}))
        items.append(
            _item(
                "score-mode",
                "Scoring mode (absolute, or reference: compared with the unaffected hand)",
                {"valueString": v.mode or "absolute"},
            )
        )
        if v.reference_trial_id is not None:
            items.append(
                _item(
                    "reference-trial-id",
                    "Reference trial of the unaffected hand",
                    {"valueInteger": v.reference_trial_id},
                )
            )
        if s.confidence is not None:
            items.append(
                _item(
                    "confidence",
                    "Confidence of the automatic score",
                    {"valueDecimal": round(s.confidence, 4)},
                )
            )
        if s.rule_score is not None:
            items.append(
                _item("rule-score", "Range-of-motion rule score", {"valueInteger": s.rule_score})
            )
        items.append(_item("review", "Flagged for clinician review", {"valueBoolean": bool(s.review)}))
    if lab is not None:
        items.extend(_label_items(lab, "clinician", "Clinician's"))
    if v.earlier_labels:
        earlier = [
            {"linkId": "earlier-label", "text": "A replaced clinician score",
             "item": _label_items(old, "earlier", "Replaced")}
            for old in v.earlier_labels
        ]  # fmt: skip
        items.append(
            {"linkId": "clinician-label-history",
             "text": "Earlier clinician scores, replaced by the current one (oldest first)",
             "item": earlier}
        )  # fmt: skip
    for r in t.reasons:
        if r.get("message"):
            items.append(_item("reason", "Why not scorable / notes", {"valueString": r["message"]}))
    return {"linkId": "trial", "text": f"Trial {t.id}", "item": items}


def _best(session: Session, item: str = DEFAULT_ITEM) -> tuple[int, str, TrialView] | None:
    best: tuple[int, str, TrialView] | None = None
    for v in session.trials:
        score = v.effective_score
        if score is None or v.trial.is_reference or v.trial.item != item:  # the unaffected hand is not scored
            continue
        source = "clinician" if v.label is not None else "automatic"
        if best is None or score > best[0]:
            best = (score, source, v)
    return best


def session_score(session: Session, item: str = DEFAULT_ITEM) -> tuple[int | None, str | None]:
    """(best score, "clinician"/"automatic") over the session's assessment trials of
    ``item``, or (None, None)."""
    best = _best(session, item)
    return (best[0], best[1]) if best is not None else (None, None)


def reference_used(session: Session, item: str = DEFAULT_ITEM) -> bool:
    """Whether the session's score of ``item`` was made compared with the unaffected hand."""
    best = _best(session, item)
    return best is not None and best[2].mode == "reference"


def _item_answer(session: Session, spec: AssessmentItem) -> dict[str, Any] | None:
    score, source = session_score(session, spec.key)
    if score is None:
        return None
    return {
        "valueInteger": score,
        "item": [
            _item("score-source", "Source of the score", {"valueString": source}),
            _item("score-meaning", "Meaning", {"valueString": spec.meanings[score].clinician}),
        ],
    }


def questionnaire_response(session: Session) -> dict[str, Any]:
    """The session as a FHIR R4 QuestionnaireResponse (a JSON-ready dict)."""
    sides = [v.trial.side for v in session.trials if v.trial.side]
    running = any(v.trial.status in ("recording", "scoring") for v in session.trials)
    finished = [v.trial.finished_at or v.trial.started_at for v in session.trials]
    items = []
    if sides:
        items.append(_item("affected-side", "Affected side", {"valueString": sides[-1]}))
    # one answer per assessment item: mass flexion always (the kit's first item), the others
    # when the session assessed them
    present = {v.trial.item for v in session.trials}
    for spec in ITEMS.values():
        if spec.key == DEFAULT_ITEM or spec.key in present:
            items.append(_item(spec.fhir_code, spec.fhir_display, _item_answer(session, spec)))
    items.append(
        _item(
            "reference-used",
            "Scored compared with the unaffected hand (a reference trial of the other hand)",
            {"valueBoolean": reference_used(session)},
        )
    )
    items += [_trial_group(v) for v in session.trials]
    labelled = any(v.label is not None for v in session.trials)
    ident = _ID_OK.sub("-", f"fma-massflex-{session.patient_code}-{session.day.isoformat()}")[:64]
    return {
        "resourceType": "QuestionnaireResponse",
        "id": ident,
        "identifier": {"system": SESSION_SYSTEM, "value": session.key},
        "questionnaire": QUESTIONNAIRE,
        "status": "in-progress" if running else "completed",
        "subject": {
            "identifier": {"system": PATIENT_SYSTEM, "value": session.patient_code},
            "display": f"Patient {session.patient_code}",
        },
        "authored": _dt(max(finished)),
        "author": {
            "display": "Clinician" if labelled else f"Flexscore {software_version()} (automatic)"
        },
        "item": items,
    }
