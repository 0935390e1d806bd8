"""JSON API mirroring the pages (described in docs/openapi.yaml)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, jsonify, request
from werkzeug.wrappers import Response

from device.errors import InputError
from device.store import TrialRecord
from device.web.access import (
    choose_unit_patient,
    chosen_patient,
    csrf_token,
    may_cancel,
    note_start,
    patient_may_see,
    patient_start,
    require,
    role,
    services,
    state,
    store,
)
from device.web.i18n import N_
from device.web.queries import iter_trials, trial_view, trial_views
from device.web.views.history import FILTER_ARGS, parse_filter
from device.web.views.results import parse_clinician, parse_label

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api")

MAX_LIMIT = 500


MAX_JSON_DEPTH = 32  # nesting a start or label body may have (they are flat objects)


def _depth(raw: bytes) -> int:
    """The deepest nesting of ``[`` / ``{`` in a JSON text (brackets inside strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for b in raw:
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:  # backslash
                escaped = True
            elif b == 0x22:  # quote
                in_string = False
        elif b == 0x22:
            in_string = True
        elif b in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif b in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _check_text(value: Any) -> None:
    """400 for a string that is not Unicode text (a lone surrogate such as "\\ud800")."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            abort(400, description="the request holds text that is not valid Unicode")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k)
            _check_text(v)
    elif isinstance(value, list):
        for v in value:
            _check_text(v)


def _body() -> dict[str, Any]:
    if request.is_json and _depth(request.get_data(cache=True)) > MAX_JSON_DEPTH:
        abort(400, description=f"the JSON body is nested more than {MAX_JSON_DEPTH} deep")
    data = request.get_json(silent=True)
    if data is None:
        return dict(request.form)
    if not isinstance(data, dict):
        abort(400, description="the request body must be a JSON object")
    _check_text(data)
    return data


def _status_doc() -> dict[str, Any]:
    """Anonymous: the device's state only. Patient mode: also the side and the newest trial
    when they are its own patient's. Clinician: everything, with the patient code."""
    snap = services().status()
    who = role()
    doc: dict[str, Any] = {
        "state": snap.get("state", "idle"),
        "remaining_s": snap.get("remaining_s"),
        "camera": snap.get("camera", "starting"),
        "fps": round(float(snap.get("fps", 0.0) or 0.0), 1),
        "hand_in_view": snap.get("hand_in_view"),
        "reasons": list(snap.get("reasons", []) or []),
        "reference": bool(snap.get("reference", False)),
        "guidance": snap.get("guidance"),  # issue 18: live guidance and the page's prompt
        "phase": snap.get("phase"),
        "prompt": snap.get("prompt"),
        "role": who,
    }
    fleet = snap.get("fleet")
    if fleet is not None:  # [fleet] configured: its state and queue; why, for a clinician
        doc["fleet"] = {"state": fleet["state"], "queued": fleet["queued"]}
        if who == "clinician":
            doc["fleet"]["detail"] = fleet.get("detail")
    if who is None:  # issue 18: the side being tested is not shown anonymously
        guidance = doc["guidance"]
        if isinstance(guidance, dict) and guidance.get("code") == "wrong_side":
            doc["guidance"] = {"code": "wrong_side", "message": "Wrong hand: show the hand being tested."}
        doc["prompt"] = None
        return doc
    own = who == "clinician" or snap.get("patient") == (chosen_patient() or (None,))[0]
    doc["side"] = snap.get("side") if own else None
    last = store().last_trial()
    doc["last_trial"] = (
        None
        if last is None or not patient_may_see(last)
        else {
            "id": last.id,
            "status": last.status,
            "score": last.score.final_score if last.score is not None and last.status == "scored" else None,
            "finished_at": last.finished_at.isoformat() if last.finished_at else None,
            "role": last.role,
        }
    )
    if who == "clinician":
        doc["patient"] = snap.get("patient")
        doc["unit_patient"] = snap.get("unit_patient")
        doc["anonymous"] = bool(snap.get("anonymous", False))
    return doc


@bp.get("/status")
def status() -> Response:
    return jsonify(_status_doc())


@bp.get("/session")
def session_info() -> Response:
    return jsonify(
        {"role": role(), "csrf_token": csrf_token(), "password_set": state().password_hash is not None}
    )


@bp.get("/trials")
@require("clinician")
def trials() -> Response:
    args = {k: request.args.get(k, "") for k in FILTER_ARGS}
    flt, errors = parse_filter(args)
    if errors:
        abort(400, description=" ".join(errors))
    try:
        limit = min(MAX_LIMIT, max(1, int(request.args.get("limit", "50"))))
        offset = max(0, int(request.args.get("offset", "0")))
    except ValueError:
        abort(400, description="limit and offset must be integers")
    st = store()
    picked: list[TrialRecord] = []
    for i, t in enumerate(iter_trials(st, flt)):
        if i < offset:
            continue
        if len(picked) >= limit:
            break
        picked.append(t)
    return jsonify(
        {"trials": [v.to_json() for v in trial_views(st, picked)], "limit": limit, "offset": offset}
    )


@bp.get("/trials/<int:trial_id>")
@require("patient")
def trial(trial_id: int) -> Response:
    view = trial_view(store(), trial_id)
    if view is None:
        abort(404)
    if not patient_may_see(view.trial):
        abort(403)
    doc = view.to_json()
    if role() != "clinician":
        for key in ("patient_code", "label", "label_history"):
            doc.pop(key, None)
    return jsonify(doc)


REFERENCE_NO_LABEL = "this is a reference trial of the unaffected hand: it has no Fugl-Meyer score to label"
REFERENCE_FORBIDDEN = N_(
    "only a clinician can record a reference trial of the unaffected hand: it changes how the "
    "session's next trials are scored"
)


def parse_reference(raw: Any) -> bool:
    """The ``reference`` flag of a start request (JSON boolean or form "1"/"true"/"on")."""
    if raw is None or raw is False or raw == "":
        return False
    if raw is True or (isinstance(raw, str) and raw.strip().lower() in ("1", "true", "on", "yes")):
        return True
    if isinstance(raw, str) and raw.strip().lower() in ("0", "false", "off", "no"):
        return False
    abort(400, description="reference must be true or false")


@bp.post("/trials/start")
@require("patient")
def start() -> tuple[Response, int]:
    body = _body()
    code = body.get("patient_code")
    side = body.get("side")
    if not isinstance(code, str | None) or not isinstance(side, str | None):
        abort(400, description="patient_code and side must be strings")
    reference = parse_reference(body.get("reference"))
    item = body.get("item")
    if not isinstance(item, str | None):
        abort(400, description="item must be a string")
    if reference and role() != "clinician":
        abort(403, description=REFERENCE_FORBIDDEN)
    if role() != "clinician":
        code, side = patient_start(code, side or None)
        item = None  # patient mode records the unit's configured item
    try:
        started = services().start_trial(code or None, side or None, reference=reference, item=item)
    except InputError as exc:
        abort(400, description=str(exc))
    note_start(started)
    if started:
        choose_unit_patient(code, side)
    if not started:
        return jsonify({"started": False, "error": "a trial is already running"}), 409
    return jsonify({"started": True, "status": _status_doc()}), 202


@bp.post("/trials/cancel")
@require("patient")
def cancel() -> Response:
    may_cancel()
    return jsonify({"cancelled": services().cancel_trial()})


@bp.get("/unit/patient")
@require("clinician")
def unit_patient() -> Response:
    bound = services().bound_patient()
    return jsonify({"patient_code": bound[0] if bound else None, "side": bound[1] if bound else None})


@bp.post("/unit/patient")
@require("clinician")
def bind_unit_patient() -> Response:
    """Bind the unit to a patient (button trials and trials without a code record for
    them); an empty or missing ``patient_code`` removes the binding."""
    body = _body()
    code, side = body.get("patient_code"), body.get("side")
    if not isinstance(code, str | None) or not isinstance(side, str | None):
        abort(400, description="patient_code and side must be strings")
    try:
        services().bind_patient(code, side or None, actor="clinician")
    except InputError as exc:
        abort(400, description=str(exc))
    return unit_patient()


@bp.post("/trials/<int:trial_id>/label")
@require("clinician")
def label(trial_id: int) -> tuple[Response, int]:
    st = store()
    found = st.get_trial(trial_id)
    if found is None:
        abort(404)
    if found.is_reference:
        return jsonify({"error": REFERENCE_NO_LABEL, "status": 409}), 409
    body = _body()
    if "score" not in body:
        abort(400, description="score is required: 0, 1, 2 or null (not scorable)")
    raw, comment_in, who_in = body["score"], body.get("comment"), body.get("clinician")
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | str | None)
        or not isinstance(comment_in, str | None)
        or not isinstance(who_in, str | None)
    ):
        abort(400, description="score must be 0, 1, 2 or null, comment and clinician strings")
    try:
        score, comment = parse_label("ns" if raw is None else str(raw), comment_in)
        who = parse_clinician(who_in)
    except ValueError as exc:
        abort(400, description=str(exc))
    label_id = st.add_label(trial_id, who, score, comment)
    log.info("clinician label stored for trial %d (API)", trial_id)
    view = trial_view(st, trial_id)
    assert view is not None
    doc = {"id": label_id, "trial_id": trial_id, "score": score, "comment": comment, "clinician": who}
    return jsonify({**doc, "current": True, "replaced": len(view.earlier_labels)}), 201
