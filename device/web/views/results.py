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
from device.web.i18n import N_, gettext
from device.web.plots import FINGER_NAMES, flexion_svg, try_series
from device.web.queries import STATUS_TEXT, TrialView, trial_view
from device.web.texts import (
    ANONYMOUS_TEXT,
    PATIENT_NEXT,
    PATIENT_REVIEW_TEXT,
    REVIEW_TEXT,
    advice,
    item_meaning,
    item_text,
    quality_rows,
    translated,
)

log = logging.getLogger(__name__)
bp = Blueprint("results", __name__, url_prefix="/results")

MODE_TEXT = {
    "reference": N_("Compared with the unaffected hand"),
    "absolute": N_("Absolute (against a full fist)"),
}
LABEL_CHOICES = {"0": 0, "1": 1, "2": 2, "ns": None}
MAX_COMMENT = 1000
MAX_CLINICIAN = 32
DEFAULT_CLINICIAN = "clinician"  # one shared clinician password: initials are optional
# The label form's errors as the page shows them (the API answers the English text)
LABEL_ERRORS = (
    N_("Choose a score of 0, 1 or 2, or 'not scorable'."),
    N_("The comment is longer than 1000 characters."),
    N_("The clinician's initials are longer than 32 characters."),
    N_("The clinician's initials must be one line of text."),
)


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


def parse_clinician(text: str | None) -> str:
    """Who gives a label: optional initials or a staff code (never a patient's name); the
    shared role name when empty. ValueError if too long or not one line of text."""
    who = (text or "").strip()
    if not who:
        return DEFAULT_CLINICIAN
    if len(who) > MAX_CLINICIAN:
        raise ValueError(f"the clinician's initials are longer than {MAX_CLINICIAN} characters")
    if any(not c.isprintable() for c in who):
        raise ValueError("the clinician's initials must be one line of text")
    return who


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
            (gettext(FINGER_NAMES.get(name, name)), float(a), float(p), float(r))
            for name, a, p, r in zip(FINGERS, aff, peak, ratio, strict=True)
        ]
    return {
        "mode": mode,
        "mode_text": gettext(MODE_TEXT[mode]) if mode in MODE_TEXT else mode,
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
        (gettext(FINGER_NAMES.get(name, name)), float(p), float(exc[k]) if k < len(exc) else None)
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


def item_name(record: Any) -> str:
    """The Fugl-Meyer item a trial assessed (a record without one: mass finger flexion)."""
    item = getattr(record, "item", None)
    return item_text(item if isinstance(item, str) and item else "mass_flexion")


def _visible_view(trial_id: int) -> TrialView:
    view = trial_view(store(), trial_id)
    if view is None:
        abort(404)
    if not patient_may_see(view.trial):
        abort(403)
    return view


def _page(view: TrialView) -> dict[str, Any]:
    """What the result page and the printable report show of one trial."""
    st = store()
    t = view.trial
    lm = _landmarks(st, t.id) if t.has_landmarks else None
    series, no_plot = try_series(lm)
    s = t.score
    detail = (s.detail or {}) if s is not None else {}
    cmp = None if t.is_reference else comparison(s)
    ref_series = None
    if cmp is not None and cmp["mode"] == "reference" and cmp["reference_id"] is not None:
        ref_series, _ = try_series(_landmarks(st, int(cmp["reference_id"])))
    scored = t.status == "scored" and s is not None and not t.is_reference
    if scored:
        next_key = "scored"
    elif t.status == "cancelled":
        next_key = "cancelled"
    else:
        next_key = "not_scorable"
    return {
        "v": view,
        "t": t,
        "s": s,
        "scored": scored,
        "item": item_name(t),
        "score_reasons": [str(r) for r in detail.get("reasons", [])],
        "advice": advice(t.reasons) if t.reasons else [],
        "cmp": cmp,
        "profile": profile_rows(t.profile) if t.is_reference else [],
        "both_hands": ref_series is not None and series is not None,
        "plot": flexion_svg(series, ref_series) if series is not None else None,
        "plot_method": series.method if series is not None else None,
        "no_plot": no_plot,
        "quality": quality_rows(t.quality),
        "meaning": item_meaning(getattr(t, "item", None) or "mass_flexion"),
        "anonymous_text": gettext(ANONYMOUS_TEXT) if t.patient_id is None else None,
        "status_text": translated(STATUS_TEXT),
        "review_text": gettext(REVIEW_TEXT),
        "patient_review_text": gettext(PATIENT_REVIEW_TEXT),
        "next_step": gettext(PATIENT_NEXT[next_key]),
        "side_text": {"left": gettext("Left"), "right": gettext("Right")},
        "clinician": role() == "clinician",
    }


@bp.get("/<int:trial_id>")
@require("patient")
def show(trial_id: int) -> str:
    return render_template("result.html", **_page(_visible_view(trial_id)))


@bp.get("/<int:trial_id>/report")
@require("patient")
def report(trial_id: int) -> str:
    """One printable page for the patient file (print it from the browser: A4, no bar)."""
    page = _page(_visible_view(trial_id))
    return render_template("report.html", **page, model_version=_model_version(page["s"]))


def _model_version(s: ScoreRecord | None) -> str | None:
    return s.model_version if s is not None else None


@bp.post("/<int:trial_id>/label")
@require("clinician")
def label(trial_id: int) -> Response:
    st = store()
    found = st.get_trial(trial_id)
    if found is None:
        abort(404)
    if found.is_reference:
        flash(
            gettext("This is a reference trial of the unaffected hand: it has no Fugl-Meyer score to label."),
            "error",
        )
        return redirect(url_for("results.show", trial_id=trial_id))
    try:
        score, comment = parse_label(request.form.get("score"), request.form.get("comment"))
        who = parse_clinician(request.form.get("clinician"))
    except ValueError as exc:
        message = str(exc).capitalize() + "."  # one of LABEL_ERRORS
        flash(gettext(message), "error")
        return redirect(url_for("results.show", trial_id=trial_id, _anchor="label"))
    st.add_label(trial_id, who, score, comment)
    log.info("clinician label stored for trial %d", trial_id)
    flash(gettext("Your score was saved. It replaces any earlier score of this trial."), "info")
    return redirect(url_for("results.show", trial_id=trial_id, _anchor="label"))
