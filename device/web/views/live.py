"""The live page: MJPEG preview with the skeleton, state, countdown, start and cancel."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from device.errors import InputError
from device.web.access import (
    choose_unit_patient,
    chosen_patient,
    may_cancel,
    note_start,
    patient_start,
    require,
    role,
    services,
    state,
)
from device.web.i18n import gettext
from device.web.live import BOUNDARY, MjpegStream
from device.web.texts import CAMERA_TEXT, HAND_TEXT, PATIENT_STATE_TEXT, STATE_TEXT, translated

log = logging.getLogger(__name__)
RECENT_PATIENTS = 6  # codes offered as one-tap choices beside the free entry
bp = Blueprint("live", __name__)


@bp.get("/")
@require("patient")
def index() -> str:
    from device.errors import StoreError
    from device.web.services import current_reference

    snap = services().status()
    reference = None
    clinician = role() == "clinician"
    code = session.get("patient_code", "") if clinician else ""
    recent: list[str] = []
    if clinician:
        try:
            reference = current_reference(services().store, code, session.get("side"))
            recent = [p.code for p in services().store.recent_patients(RECENT_PATIENTS)]
        except StoreError as exc:
            log.warning("cannot look up the session's reference: %s", exc)
    return render_template(
        "live.html",
        reference=reference,
        snap=snap,
        state_text=translated(STATE_TEXT if clinician else PATIENT_STATE_TEXT),
        camera_text=translated(CAMERA_TEXT),
        hand_text=translated(HAND_TEXT),
        patient_code=code,
        recent_patients=recent,
        side=session.get("side", ""),
        item=session.get("item", "") or (snap.get("items") or ["mass_flexion"])[0],
        unit_patient=snap.get("unit_patient") if clinician else None,
        clinician=clinician,
        patient_chosen=clinician or chosen_patient() is not None,
        live_texts={
            "busy": gettext("Live view busy: showing a still picture every second."),
            "lost": gettext("Lost contact with the appliance; retrying…"),
            "camera": gettext("Camera problem"),
            "reference": gettext("Reference: the other (unaffected) hand"),
            "left": gettext("the left hand"),
            "right": gettext("the right hand"),
        },
    )


@bp.get("/stream.mjpg")
@require("patient")
def stream() -> BaseResponse:
    st = state()
    release = st.streams.acquire(str(session.get("sid")))
    if release is None:
        log.info("live stream refused: %d viewers already (or 2 in this session)", st.streams.active)
        resp = Response("Too many live viewers; try again later.\n", 503, mimetype="text/plain")
        resp.headers["Retry-After"] = "5"
        return resp
    body = MjpegStream(st.services.latest_jpeg, release, st.stopping, st.config.stream_fps)
    resp = Response(body, mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/snapshot.jpg")
@require("patient")
def snapshot() -> BaseResponse:
    frame = services().latest_jpeg()
    if frame is None:
        return Response("No camera frame yet.\n", 503, mimetype="text/plain")
    resp = Response(frame.data, mimetype="image/jpeg")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/trial/start")
@require("patient")
def start() -> BaseResponse:
    from device.web.views.api import REFERENCE_FORBIDDEN, parse_reference

    code = request.form.get("patient_code", "").strip()
    side = request.form.get("side", "")
    reference = parse_reference(request.form.get("reference"))
    if reference and role() != "clinician":
        abort(403, description=REFERENCE_FORBIDDEN)
    item = request.form.get("item") or None
    if role() == "clinician":
        session["patient_code"], session["side"] = code, side
        session["item"] = item or ""
    else:
        code, side = (v or "" for v in patient_start(code, side or None))
        item = None  # patient mode records the unit's configured item
    try:
        started = services().start_trial(code or None, side or None, reference=reference, item=item)
    except InputError as exc:
        flash(str(exc), "error")
        return redirect(url_for("live.index"))
    note_start(started)
    if started:
        choose_unit_patient(code, side)
    if not started:
        flash(gettext("A trial is already running."), "error")
    return redirect(url_for("live.index"))


@bp.post("/unit/bind")
@require("clinician")
def bind() -> BaseResponse:
    """Bind the unit to the patient in the form (the button and patient mode record for
    them); an empty code removes the binding."""
    code = request.form.get("patient_code", "").strip()
    side = request.form.get("side", "")
    session["patient_code"], session["side"] = code, side
    try:
        services().bind_patient(code or None, side or None, actor="clinician")
    except InputError as exc:
        flash(str(exc), "error")
        return redirect(url_for("live.index"))
    if code:
        flash(gettext("This unit now records for %(code)s.", code=code), "ok")
    else:
        flash(gettext("This unit is bound to no patient now."), "ok")
    return redirect(url_for("live.index"))


@bp.post("/trial/cancel")
@require("patient")
def cancel() -> BaseResponse:
    may_cancel()
    if not services().cancel_trial():
        flash(gettext("No trial was running."), "info")
    return redirect(url_for("live.index"))
