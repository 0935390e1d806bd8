"""Site validation: the kit's agreement with the clinicians' labels (clinician only).

The figures come from :mod:`device.scoring.agreement`; ``flexscore validate --html`` renders
the same partial template (``_validation_report.html``) into a standalone file with
:func:`render_standalone`.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request

from device import __version__
from device.errors import InputError
from device.scoring.agreement import since_datetime, store_report
from device.web.access import require, store

log = logging.getLogger(__name__)
bp = Blueprint("validation", __name__, url_prefix="/validation")

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.0%}"


def num(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def _since() -> tuple[date | None, list[str]]:
    text = (request.args.get("since") or "").strip()
    if not text:
        return None, []
    try:
        since = date.fromisoformat(text)
        since_datetime(since)  # a date the store can compare with (not year 1)
    except InputError as exc:
        return None, [f"'since': {exc}."]
    except ValueError:
        return None, ["'since' must be a date like 2024-05-31."]
    return since, []


@bp.get("")
@require("clinician")
def index() -> tuple[str, int]:
    since, errors = _since()
    rep = store_report(store(), since)
    page = render_template(
        "validation.html",
        rep=rep,
        since=since.isoformat() if since else "",
        errors=errors,
        pct=pct,
        num=num,
    )
    return page, 400 if errors else 200


@bp.get("/report.json")
@require("clinician")
def report_json() -> Response:
    since, errors = _since()
    if errors:
        resp = jsonify({"error": errors[0], "status": 400})
        resp.status_code = 400
        return resp
    resp = jsonify(store_report(store(), since))
    resp.headers["Cache-Control"] = "no-store"
    return resp


def render_standalone(rep: dict[str, Any], source: str) -> str:
    """The report as one self-contained HTML page (no Flask app needed)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]  # the file is English
    return env.get_template("validation_standalone.html").render(
        rep=rep,
        pct=pct,
        num=num,
        source=source,
        version=__version__,
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
    )
