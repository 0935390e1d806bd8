"""Issue 18's words and pages: error pages are HTML for a browser (JSON for the API), the
patient's result page speaks plainly and hides the engineering, values are rounded, the
printable report and the patient leaflet, the status page's real address and scorer."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from test_web_support import csrf, hand_over, login, make_app

from device.panel.patterns import PATTERNS, PanelState
from device.store import NewScore
from device.web import shutdown
from device.web.fake import FakeServices
from device.web.services import ModelInfo
from device.web.texts import quality_rows
from device.web.views.help import LED_ROWS
from device.web.views.status import mark_in_use, scorer_name

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture()
def app(fake: FakeServices) -> Iterator[Flask]:
    app = make_app(fake, max_request_kb=1, login_max_attempts=1)
    yield app
    shutdown(app)


def _text(html: str) -> str:
    main = html.split("<main", 1)[-1]
    return " ".join(re.sub(r"<[^>]+>", " ", main).split())


def test_error_pages_are_html_for_a_browser_and_json_for_the_api(app: Flask, fake: FakeServices) -> None:
    fake.run_trial("P001", "right", 2)
    patient = app.test_client()
    login(patient, "patient")
    pages = {
        "/history": 403,  # a patient opening the clinician's history
        "/results/999": 404,  # an unknown result
        "/no/such/page": 404,
    }
    for path, code in pages.items():
        resp = patient.get(path, headers=BROWSER)
        assert resp.status_code == code and resp.mimetype == "text/html", path
        assert resp.text.lstrip().startswith("<!doctype html>") and "<h1>" in resp.text
    resp = patient.post("/trial/start", data={"csrf_token": "wrong"}, headers=BROWSER)  # 400
    assert resp.status_code == 400 and resp.mimetype == "text/html" and "CSRF" in resp.text
    resp = patient.post("/trial/start", data={"x": "y" * 4096}, headers=BROWSER)  # 413
    assert resp.status_code == 413 and resp.mimetype == "text/html"
    resp = patient.get("/", headers={**BROWSER, "Host": "evil.example"})
    assert resp.status_code == 400 and resp.mimetype == "text/html"
    resp = patient.put("/", headers={**BROWSER, "X-CSRF-Token": csrf(patient)})  # 405
    assert resp.status_code == 405 and resp.mimetype == "text/html"
    anon = app.test_client()
    token = csrf(anon)
    for _ in range(2):
        resp = anon.post("/login", data={"csrf_token": token, "password": "nope"}, headers=BROWSER)
    assert resp.status_code == 429 and resp.mimetype == "text/html"
    for path in ("/api/trials/999", "/api/nope"):
        resp = patient.get(path, headers=BROWSER)
        assert resp.mimetype == "application/json" and resp.get_json()["status"] in (403, 404)


def test_patient_result_is_plain_words(app: Flask, fake: FakeServices) -> None:
    patient = hand_over(app.test_client(), "P7", "right")
    assert patient.post("/trial/start", data={"csrf_token": csrf(patient)}).status_code == 302
    fake.cancel_trial()
    trial = fake.run_trial("P7", "right", 1)
    assert trial is not None
    words = _text(patient.get(f"/results/{trial.id}").text)
    assert "Partial flexion" in words and "The fingers closed part of the way." in words
    assert "You can rest now" in words  # what to do next
    for technical in ("RNN", "rule", "Mode", "Hand size", "px", "Confidence", "fake-rnn"):
        assert technical not in words, technical
    clinician = app.test_client()
    login(clinician, "clinician")
    clin = _text(clinician.get(f"/results/{trial.id}").text)
    assert "Confidence" in clin and "Rule score" in clin and "Mode" in clin


def test_not_scorable_says_what_to_do(app: Flask, fake: FakeServices) -> None:
    patient = hand_over(app.test_client(), "P8", "left")
    trial = fake.run_trial("P8", "left", None)  # the fake's "no hand" rejection
    assert trial is not None and trial.status == "rejected"
    words = _text(patient.get(f"/results/{trial.id}").text)
    assert "Sit in front of the camera with your hand in the picture" in words
    assert "press Start to try again" in words


def test_review_has_a_next_step(app: Flask, fake: FakeServices) -> None:
    trial = fake.run_trial("P001", "right", 2)
    assert trial is not None
    fake.store.add_score(trial.id, NewScore(final_score=1, rule_score=2, review=True))  # checks disagree
    clinician = app.test_client()
    login(clinician, "clinician")
    assert "enter your own score below" in _text(clinician.get(f"/results/{trial.id}").text)


def test_quality_values_are_rounded() -> None:
    rows = dict(quality_rows({"duration_s": 5.933, "hand_size_px": 123.2, "presence_share": 0.8713}))
    assert rows == {"Recording length": "5.9 s", "Hand size (median)": "123 px", "Hand visible": "87%"}


def test_printable_report(app: Flask, fake: FakeServices) -> None:
    trial = fake.run_trial("P001", "left", 2)
    assert trial is not None
    fake.store.add_label(trial.id, "AB", 2, "clear fist")
    clinician = app.test_client()
    login(clinician, "clinician")
    html = clinician.get(f"/results/{trial.id}/report").text
    facts = _text(html.split('class="report-facts"')[1].split("</dl>")[0])
    for needle in ("P001", "Left", "Mass finger flexion", "2 / 2", "Full flexion", "clear fist", "fake-rnn"):
        assert needle in facts, needle
    assert "<svg" in html and 'class="bar"' not in html and "<form" not in html
    assert f'href="/results/{trial.id}/report"' in clinician.get(f"/results/{trial.id}").text


def test_leaflet_describes_the_panel(app: Flask) -> None:
    html = app.test_client().get("/help").text  # no login needed
    words = _text(html)
    needles = ("Press once", "Press again during the countdown", "long press", "not scorable", "How to sit")
    for needle in needles:
        assert needle in words or needle in html, needle
    shown = {state for state, *_ in LED_ROWS}
    assert shown == set(PATTERNS) | {PanelState.RESULT}  # every LED pattern is explained
    assert html.count("<tr data-state=") == len(LED_ROWS)


def test_status_shows_the_real_address_and_the_scorer(app: Flask) -> None:
    patient = app.test_client()
    login(patient, "patient")
    html = patient.get("/status", base_url="http://localhost:8765").text
    assert re.search(r'id="page-address">http://localhost:8765<', html)
    assert scorer_name("scorer_hand_int8@1a2b3c4d") == "scorer_hand_int8"
    assert scorer_name("unavailable: no model") is None
    models = (
        ModelInfo("palm", "palm", "lite", "ab", 1, True),
        ModelInfo("scorer_hand_int8", "scorer", "", "cd", 1),
    )
    assert [use for _, use in mark_in_use(models, "scorer_hand_int8")] == ["tracker", "scorer"]


def test_history_chart_shows_its_last_date() -> None:
    from datetime import UTC, datetime, timedelta

    from device.web.plots import HistoryPoint, W, history_svg

    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    for days in ((0, 9, 20), (0, 0.2, 0.5)):  # dates only; dates with times (longer labels)
        svg = str(history_svg([HistoryPoint(now - timedelta(days=d), 1, None, "scored") for d in days]))
        tick = r'<text x="([\d.]+)" y="[\d.]+" text-anchor="(\w+)" class="tick">([^<]+)</text>'
        ticks = re.findall(tick, svg)
        x, anchor, text = ticks[-1]
        right = float(x) + (len(text) * 3.7 if anchor == "middle" else 0)
        assert text.strip() and right <= W, (x, anchor, text)  # the last date is drawn inside
    assert anchor == "end"  # a long last label is right-aligned to stay inside
