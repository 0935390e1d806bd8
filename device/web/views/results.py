"""The result page: score, probabilities, reasons, quality, flexion plot, clinician label.

Issue 10: a reference trial (the unaffected hand) shows "reference recorded" and its range
per finger instead of a score; an assessment scored against a reference shows the mode,
both hands' curves on one plot and the per-finger ratio; one whose reference was unusable
says why and that the absolute mode was used."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from device.errors import StoreError
from device.scoring.rules import FINGERS
from device.store import ScoreRecord, Store
from device.trial.types import Trial
from device.web.access import patient_may_see, require, role, store
from device.web.plots import flexion_svg, try_series
from device.web.queries import SCORE_TEXT, STATUS_TEXT, trial_view
from device.web.texts import quality_rows

log = logging.getLogger(__name__)
bp = Blueprint("results", __name__, url_prefix="/results")

MODE_TEXT = {
    "reference": "Compared with the unaffected hand",
    "absolute": "Absolute (against a full fist)",
}
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


def comparison(s: ScoreRecord | None) -> dict[str, Any] | None:
    """What the page says about the scoring mode of an assessment's score (None: no score)."""
    if s is None:
        return None
    details = (s.detail or {}).get("details") or {}
    ref = details.get("reference") or {}
    mode = s.mode or details.get("mode") or "absolute"
    rows = []
    ratio = ref.get("ratio") or []
    aff = ref.get("affected_peak_closure") or []
    peak = ref.get("peak_closure") or []
    if len(ratio) == len(aff) == len(peak) == len(FINGERS):
        rows = [
            (name.capitalize(), float(a), float(p), float(r))
            for name, a, p, r in zip(FINGERS, aff, peak, ratio, strict=True)
        ]
    return {
        "mode": mode,
        "mode_text": MODE_TEXT.get(mode, mode),
        "reference_id": s.reference_trial_id,
        "usable": ref.get("usable"),
        "unusable_reasons": [str(r) for r in ref.get("reasons", [])] if ref and not ref.get("usable") else [],
        "full_fist": ref.get("full_fist"),
        "rows": rows,
    }


def profile_rows(profile: dict[str, Any] | None) -> list[tuple[str, float, float | None]]:
    """(finger, peak closure, excursion) rows of a reference trial's profile."""
    peak = (profile or {}).get("peak_closure") or []
    exc = (profile or {}).get("excursion") or []
    if len(peak) != len(FINGERS):
        return []
    return [
        (name.capitalize(), float(p), float(exc[k]) if k < len(exc) else None)
        for k, (name, p) in enumerate(zip(FINGERS, peak, strict=True))
    ]


def _landmarks(st: Store, trial_id: int) -> Trial | None:
    try:
        return st.load_trial(trial_id)
    except StoreError as exc:
        log.warning("trial %d: landmarks unreadable: %s", trial_id, exc)
        return None


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
    lm = _landmarks(st, trial_id) if view.trial.has_landmarks else None
    series, no_plot = try_series(lm)
    s = view.trial.score
    detail = (s.detail or {}) if s is not None else {}
    score_reasons = [str(r) for r in detail.get("reasons", [])]
    cmp = None if view.trial.is_reference else comparison(s)
    ref_series = None
    if cmp is not None and cmp["mode"] == "reference" and cmp["reference_id"] is not None:
        ref_series, _ = try_series(_landmarks(st, int(cmp["reference_id"])))
    return render_template(
        "result.html",
        v=view,
        t=view.trial,
        s=s,
        score_reasons=score_reasons,
        cmp=cmp,
        profile=profile_rows(view.trial.profile) if view.trial.is_reference else [],
        both_hands=ref_series is not None and series is not None,
        plot=flexion_svg(series, ref_series) if series is not None else None,
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
    found = st.get_trial(trial_id)
    if found is None:
        abort(404)
    if found.is_reference:
        flash(
            "This is a reference trial of the unaffected hand: it has no Fugl-Meyer score to label.",
            "error",
        )
        return redirect(url_for("results.show", trial_id=trial_id))
    try:
        score, comment = parse_label(request.form.get("score"), request.form.get("comment"))
    except ValueError as exc:
        flash(str(exc).capitalize() + ".", "error")
        return redirect(url_for("results.show", trial_id=trial_id, _anchor="label"))
    st.add_label(trial_id, "clinician", score, comment)
    log.info("clinician label stored for trial %d", trial_id)
    flash("Your score was saved.", "info")
    return redirect(url_for("results.show", trial_id=trial_id, _anchor="label"))
