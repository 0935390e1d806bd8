"""Exports: trials as CSV / JSON, a FHIR R4 QuestionnaireResponse per session, landmarks."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

import numpy as np
from flask import Blueprint, Response, abort, render_template, request

from device.errors import StoreError
from device.store import encode_trial
from device.trial.types import Trial
from device.web.access import require, store
from device.web.fhir import questionnaire_response, session_score
from device.web.i18n import gettext
from device.web.queries import (
    STATUS_TEXT,
    TrialFilter,
    TrialView,
    iter_trials,
    sessions,
    trial_views,
    trials_csv,
)
from device.web.texts import translated
from device.web.views.history import FILTER_ARGS, parse_filter

log = logging.getLogger(__name__)
bp = Blueprint("export", __name__, url_prefix="/export")

LANDMARKS_FORMAT = "flexscore-landmarks-json-v1"


def _filtered() -> tuple[TrialFilter, list[str]]:
    args = {k: request.args.get(k, "") for k in FILTER_ARGS}
    flt, errors = parse_filter(args)
    if args["patient"] and flt.patient is None:
        abort(404)
    if errors:
        abort(400, description=" ".join(errors))
    return flt, errors


def _views(flt: TrialFilter) -> list[TrialView]:
    """The trials the filter selects, as the views the exports are made of."""
    st = store()
    return trial_views(st, list(iter_trials(st, flt)))


def _download(body: str | bytes, mimetype: str, filename: str) -> Response:
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("")
@require("clinician")
def index() -> str:
    st = store()
    args = {k: request.args.get(k, "") for k in FILTER_ARGS}
    flt, errors = parse_filter(args)
    views = _views(flt) if not errors else []
    sess = sessions(views)
    return render_template(
        "export.html",
        args=args,
        errors=errors,
        patients=st.list_patients(),
        sessions=[(s, session_score(s)) for s in sess],
        count=len(views),
        query=request.query_string.decode("ascii", "replace"),
        statuses=list(STATUS_TEXT),
        status_text=translated(STATUS_TEXT),
        source_text={"clinician": gettext("clinician"), "automatic": gettext("automatic")},
    )


@bp.get("/trials.csv")
@require("clinician")
def trials_as_csv() -> Response:
    views = _views(_filtered()[0])
    log.info("exported %d trials as CSV", len(views))
    return _download(trials_csv(views), "text/csv", "flexscore-trials.csv")


@bp.get("/trials.json")
@require("clinician")
def trials_as_json() -> Response:
    views = _views(_filtered()[0])
    log.info("exported %d trials as JSON", len(views))
    doc = {"format": "flexscore-trials-v1", "trials": [v.to_json() for v in views]}
    return _download(json.dumps(doc, indent=1), "application/json", "flexscore-trials.json")


@bp.get("/fhir/<code>/<day>.json")
@require("clinician")
def fhir_session(code: str, day: str) -> Response:
    st = store()
    patient = st.find_patient(code)
    try:
        when = date.fromisoformat(day)
    except ValueError:
        abort(404)
    if patient is None:
        abort(404)
    flt = TrialFilter(patient=patient, date_from=when, date_to=when)
    found = sessions(_views(flt))
    if not found:
        abort(404)
    doc = questionnaire_response(found[0])
    log.info("exported a FHIR QuestionnaireResponse")
    return _download(
        json.dumps(doc, indent=1), "application/fhir+json", f"{doc['id']}.json"
    )


def _trial(trial_id: int) -> Trial:
    st = store()
    if st.get_trial(trial_id) is None:
        abort(404)
    try:
        return st.load_trial(trial_id)
    except StoreError:
        abort(404, description="this trial has no stored landmarks")


def _nan_to_none(a: np.ndarray, digits: int) -> Any:
    out = np.round(a.astype(np.float64), digits).astype(object)
    out[np.isnan(a)] = None
    return out.tolist()


@bp.get("/trials/<int:trial_id>/landmarks.npz")
@require("clinician")
def landmarks_npz(trial_id: int) -> Response:
    data = encode_trial(_trial(trial_id))
    return _download(data, "application/octet-stream", f"flexscore-trial-{trial_id}-landmarks.npz")


@bp.get("/trials/<int:trial_id>/landmarks.json")
@require("clinician")
def landmarks_json(trial_id: int) -> Response:
    tr = _trial(trial_id)
    doc = {
        "format": LANDMARKS_FORMAT,
        "trial_id": trial_id,
        "units": "landmarks: pixels (x right, y down, z relative depth on the x scale); "
        "world: metres in the hand's own frame; t: seconds",
        "image_size": list(tr.image_size),
        "side": tr.side,
        "mirrored": tr.mirrored,
        "has_z": tr.has_z,
        "t": [round(float(v), 4) for v in tr.t],
        "presence": [round(float(v), 3) for v in tr.presence],
        "handedness": list(tr.handedness),
        "landmarks": _nan_to_none(tr.landmarks, 2),
        "world": None if tr.world is None else _nan_to_none(tr.world, 5),
    }
    return _download(json.dumps(doc), "application/json", f"flexscore-trial-{trial_id}-landmarks.json")
