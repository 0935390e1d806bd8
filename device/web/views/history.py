"""History: trials per patient, filtered by date and status, with a plot of scores over time."""

from __future__ import annotations

import logging
from datetime import date

from flask import Blueprint, render_template, request

from device.items import ITEMS
from device.store import TRIAL_STATUSES, Patient
from device.web.access import require, store
from device.web.i18n import gettext
from device.web.plots import HistoryPoint, history_svg
from device.web.queries import STATUS_TEXT, TrialFilter, iter_trials, trial_views
from device.web.texts import translated

log = logging.getLogger(__name__)
bp = Blueprint("history", __name__, url_prefix="/history")

MAX_ROWS = 500
FILTER_ARGS = ("patient", "status", "from", "to", "item")


def parse_filter(args: dict[str, str]) -> tuple[TrialFilter, list[str]]:
    """A :class:`TrialFilter` from query arguments (patient, status, from, to) and errors."""
    errors: list[str] = []
    st = store()
    patient: Patient | None = None
    code = (args.get("patient") or "").strip()
    if code:
        patient = st.find_patient(code)
        if patient is None:
            errors.append(gettext("No patient with code %(code)s.", code=repr(code)))
    status = args.get("status") or None
    if status is not None and status not in TRIAL_STATUSES:
        errors.append(gettext("Unknown status."))
        status = None
    item = args.get("item") or None
    if item is not None and item not in ITEMS:
        errors.append(gettext("Unknown assessment item."))
        item = None
    days: list[date | None] = []
    for key in ("from", "to"):
        text = (args.get(key) or "").strip()
        try:
            days.append(date.fromisoformat(text) if text else None)
        except ValueError:
            errors.append(gettext("'%(key)s' must be a date like 2024-05-31.", key=key))
            days.append(None)
    return TrialFilter(patient, status, days[0], days[1], item), errors


@bp.get("")
@require("clinician")
def index() -> str:
    st = store()
    args = {k: request.args.get(k, "") for k in FILTER_ARGS}
    flt, errors = parse_filter(args)
    missing = bool(args["patient"]) and flt.patient is None
    trials = [] if missing else [t for _, t in zip(range(MAX_ROWS), iter_trials(st, flt), strict=False)]
    views = trial_views(st, trials)
    points = [
        HistoryPoint(v.trial.started_at, v.auto_score, v.label.score if v.label else None, v.trial.status)
        for v in views
        if v.trial.status not in ("cancelled",)
    ]
    return render_template(
        "history.html",
        views=views,
        plot=history_svg(points),
        patients=st.list_patients(),
        args=args,
        errors=errors,
        statuses=TRIAL_STATUSES,
        status_text=translated(STATUS_TEXT),
        side_text={"left": gettext("Left"), "right": gettext("Right")},
        truncated=len(trials) >= MAX_ROWS,
    )
