"""The result page: score, probabilities, reasons, quality, flexion plot, clinician label."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from device.errors import StoreError
from device.web.access import patient_may_see, require, role, store
from device.web.plots import flexion_svg, try_series
from device.web.queries import SCORE_TEXT, STATUS_TEXT, trial_view
from device.web.texts import quality_rows

log = logging.getLogger(__name__)
bp = Blueprint("results", __name__, url_prefix="/results")

LABEL_CHOICES = {"0": 0, "1": 1, "2": 2, "ns": None}
MAX_COMMENT = 1000


def parse_label(score: str | None, comment: str | None) -> tuple[int | None, str | None]:
    """(score or None for "not scorable", comment) from a form/JSON; ValueError if invalid."""
    key = "" if score is None else str(score).strip().lower()
    if key in ("none", "null", "not_scorable"):
        key = "ns"
    if key not in LABEL_CHOICES:
        raise ValueError("choose a score of 0, 1 or 2, or 'not scorable'")
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT:
        raise ValueError(f"the comment is longer than {MAX_COMMENT} characters")
    return LABEL_CHOICES[key], text or None


@bp.get("/last")
@require("patient")
def last() -> Response | str:
    trial = store().last_trial()
    if trial is None:
        return render_template("no_result.html")
    return redirect(url_for("results.show", trial_id=trial.id))


@bp.get("/<int:trial_id>")
@require("patient")
def show(trial_id: int) -> str:
    st = store()
    view = trial_view(st, trial_id)
    if view is None:
        abort(404)
    if not patient_may_see(view.trial):
        abort(403)
    lm = None
    if view.trial.has_landmarks:
        try:
            lm = st.load_trial(trial_id)
        except StoreError as exc:
            log.warning("trial %d: landmarks unreadable: %s", trial_id, exc)
    series, no_plot = try_series(lm)
    s = view.trial.score
    detail = (s.detail or {}) if s is not None else {}
    score_reasons = [str(r) for r in detail.get("reasons", [])]
    return render_template(
        "result.html",
        v=view,
        t=view.trial,
        s=s,
        score_reasons=score_reasons,
        plot=flexion_svg(series) if series is not None else None,
        plot_method=series.method if series is not None else None,
        no_plot=no_plot,
        quality=quality_rows(view.trial.quality),
        score_text=SCORE_TEXT,
        status_text=STATUS_TEXT,
        clinician=role() == "clinician",
    )


@bp.post("/<int:trial_id>/label")
@require("clinician")
def label(trial_id: int) -> Response:
    st = store()
    if st.get_trial(trial_id) is None:
        abort(404)
    try:
        score, comment = parse_label(request.form.get("score"), request.form.get("comment"))
    except ValueError as exc:
        flash(str(exc).capitalize() + ".", "error")
        return redirect(url_for("results.show", trial_id=trial_id, _anchor="label"))
    st.add_label(trial_id, "clinician", score, comment)
    log.info("clinician label stored for trial %d", trial_id)
    flash("Your score was saved.", "info")
    return redirect(url_for("results.show", trial_id=trial_id, _anchor="label"))
