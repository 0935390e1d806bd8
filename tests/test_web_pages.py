"""The pages and the API over the fake appliance: live view, streams, results, labels, history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from test_web_support import csrf, hand_over, login, make_app

from device.trial.quality import QualityReason
from device.trial.recorder import RecorderState, StateChange, TrialInfo
from device.web import LiveFrames, WebServices, shutdown
from device.web.fake import FakeServices
from device.web.live import MjpegStream, StreamLimiter
from device.web.plots import HistoryPoint, flexion_svg, history_svg, trial_series
from device.web.services import models_from_manifest, trial_outcome

OPENAPI = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"


@pytest.fixture()
def app(fake: FakeServices) -> Iterator[Flask]:
    app = make_app(fake, max_streams=2)
    yield app
    shutdown(app)


@pytest.fixture()
def patient(app: Flask) -> FlaskClient:
    client = app.test_client()
    login(client, "patient")
    return client


def test_fake_implements_the_protocol(fake: FakeServices) -> None:
    assert isinstance(fake, WebServices)
    snap = fake.status()
    assert {"state", "camera", "fps", "remaining_s", "patient", "side"} <= set(snap)


# --------------------------------------------------------------------------- live


def test_live_page_has_controls(patient: FlaskClient, clinician: FlaskClient) -> None:
    html = patient.get("/").text
    needles = ('id="video"', 'src="/stream.mjpg"', 'value="left"', 'value="right"')
    needles += ('id="start"', 'id="cancel"', "live.js", 'aria-live="polite"')
    needles += ("Anonymous screening: trials are recorded without a patient",)  # the fake screens anonymously
    for needle in needles:
        assert needle in html
    assert 'name="patient_code"' not in html  # patient mode never types a code
    page = clinician.get("/").text
    assert 'name="patient_code"' in page and 'id="handover"' in page


def test_start_and_cancel_from_the_page(app: Flask, fake: FakeServices) -> None:
    patient = hand_over(app.test_client(), "P7", "left")  # the clinician chose P7 for the session
    resp = patient.post("/trial/start", data={"csrf_token": csrf(patient)})
    assert resp.status_code == 302
    assert fake.recorder.state is RecorderState.COUNTDOWN
    assert fake.recorder.info is not None and fake.recorder.info.patient_id is not None
    status = patient.get("/api/status").get_json()
    assert status["state"] == "countdown" and status["side"] == "left"
    assert "patient" not in status  # patient mode sees no codes
    assert 0 < status["remaining_s"] <= 3
    again = patient.post("/trial/start", data={"csrf_token": csrf(patient), "patient_code": "P7"})
    assert again.status_code == 302
    assert "already running" in patient.get("/").text
    patient.post("/trial/cancel", data={"csrf_token": csrf(patient)})
    assert fake.recorder.state is RecorderState.CANCELLED
    assert fake.calls == ["start", "cancel"]
    page = patient.get("/").text
    assert "Patient code" not in page and "P7" not in page and "recorded for you" in page


def test_start_rejects_names_and_bad_sides(clinician: FlaskClient, fake: FakeServices) -> None:
    token = csrf(clinician)
    resp = clinician.post("/trial/start", data={"csrf_token": token, "patient_code": "Jane Doe"})
    assert resp.status_code == 302
    assert "pseudonym" in clinician.get("/").text
    api = clinician.post("/api/trials/start", json={"side": "middle"}, headers={"X-CSRF-Token": token})
    assert api.status_code == 400 and "side" in api.get_json()["error"]
    assert fake.recorder.state is RecorderState.IDLE


def test_api_start_conflict_and_status(clinician: FlaskClient, fake: FakeServices) -> None:
    h = {"X-CSRF-Token": csrf(clinician)}
    first = clinician.post("/api/trials/start", json={"patient_code": "P001", "side": "right"}, headers=h)
    assert first.status_code == 202 and first.get_json()["started"] is True
    second = clinician.post("/api/trials/start", json={}, headers=h)
    assert second.status_code == 409
    status = clinician.get("/api/status").get_json()
    assert status["patient"] == "P001"
    assert clinician.post("/api/trials/cancel", headers=h).get_json() == {"cancelled": True}
    assert clinician.post("/api/trials/cancel", headers=h).get_json() == {"cancelled": False}


def test_status_reports_the_last_trial(app: Flask, fake: FakeServices, clinician: FlaskClient) -> None:
    anon = app.test_client()
    assert clinician.get("/api/status").get_json()["last_trial"] is None
    trial = fake.run_trial("P001", "right", 2)
    assert trial is not None
    doc = clinician.get("/api/status").get_json()
    assert doc["state"] == "result"
    assert doc["camera"] == "ok" and doc["fps"] > 0
    assert doc["last_trial"]["id"] == trial.id
    assert doc["last_trial"]["status"] == "scored" and doc["last_trial"]["score"] == 2
    assert doc["last_trial"]["finished_at"]
    assert doc["patient"] == "P001" and doc["side"] == "right" and doc["role"] == "clinician"
    # anonymous: the device's state only — no score, no side, no patient (issue 19)
    doc = anon.get("/api/status").get_json()
    device_only = {"state", "remaining_s", "camera", "fps", "hand_in_view", "reasons", "reference", "role"}
    device_only |= {"guidance", "phase", "prompt"}  # issue 18: live guidance (no side: prompt is None)
    assert set(doc) == device_only
    assert doc["state"] == "result" and doc["role"] is None


def test_snapshot_is_a_jpeg(patient: FlaskClient, fake: FakeServices) -> None:
    resp = patient.get("/snapshot.jpg")
    assert resp.status_code == 200 and resp.data[:2] == b"\xff\xd8"
    fake.camera_state = "lost"
    assert patient.get("/snapshot.jpg").status_code == 503


def test_stream_sends_jpeg_frames(patient: FlaskClient, fake: FakeServices) -> None:
    resp = patient.get("/stream.mjpg")
    try:
        assert resp.status_code == 200
        assert resp.mimetype == "multipart/x-mixed-replace"
        chunk = next(iter(resp.response))
        assert chunk.startswith(b"--frame\r\nContent-Type: image/jpeg\r\n")
        assert b"\xff\xd8" in chunk
    finally:
        resp.close()


def test_stream_cap_gives_503_and_frees_slots(app: Flask) -> None:
    clients = [app.test_client() for _ in range(3)]
    for c in clients:
        login(c, "patient")
    first, second = clients[0].get("/stream.mjpg"), clients[1].get("/stream.mjpg")
    try:
        assert first.status_code == second.status_code == 200
        third = clients[2].get("/stream.mjpg")
        assert third.status_code == 503 and third.headers["Retry-After"]
        first.close()  # a viewer leaves without ever reading: its slot is free again
        fourth = clients[2].get("/stream.mjpg")
        assert fourth.status_code == 200
        fourth.close()
    finally:
        first.close()
        second.close()
    assert app.extensions["flexscore"].streams.active == 0


def test_slow_viewer_skips_frames_and_never_blocks_the_tracker() -> None:
    live = LiveFrames()
    rgb = np.zeros((48, 64, 3), np.uint8)
    live.put(rgb)
    limiter = StreamLimiter(1)
    release = limiter.acquire()
    assert release is not None and limiter.acquire() is None
    import threading

    stream = MjpegStream(live.latest_jpeg, release, threading.Event(), fps=60.0)
    try:
        next(stream)  # frame 1 sent; the viewer now stalls
        for _ in range(500):  # the tracker keeps putting frames: nothing waits for the viewer
            live.put(rgb)
        assert live.seq == 501
        next(stream)  # the viewer resumes with the newest frame, not the 500 it missed
        cached = live.latest_jpeg()
        assert cached is not None and cached.seq == 501
    finally:
        stream.close()
    assert limiter.active == 0
    stream.close()  # idempotent
    assert limiter.active == 0


def test_latest_jpeg_waits_only_for_newer_frames() -> None:
    live = LiveFrames()
    assert live.latest_jpeg() is None
    live.put(np.full((8, 8, 3), 200, np.uint8))
    frame = live.latest_jpeg()
    assert frame is not None and frame.seq == 1 and frame.data[:2] == b"\xff\xd8"
    assert live.latest_jpeg(newer_than=1, timeout=0.0) is None
    assert live.latest_jpeg(newer_than=0) is frame  # encoded once, shared


# --------------------------------------------------------------------------- results


def test_result_page_of_a_scored_trial(clinician: FlaskClient, fake: FakeServices) -> None:
    trial = fake.run_trial("P001", "right", 2)
    assert trial is not None
    html = clinician.get(f"/results/{trial.id}").text
    assert re.search(r'class="score"[^>]*>2<span class="of">/2', html)
    assert "Full flexion" in html
    assert html.count("<meter") >= 3 and "90%" in html  # probabilities and confidence
    assert "range-of-motion rule: 2" in html
    assert "<svg" in html and "Flexion (% of fist)" in html and "Openness (palm sizes)" in html
    assert "Time since recording started (s)" in html
    assert "Hand visible" in html  # quality notes
    assert 'name="score" value="ns"' in html and 'name="comment"' in html
    assert "landmarks.json" in html and "/export/fhir/P001/" in html


def test_result_page_of_a_rejected_trial(clinician: FlaskClient, fake: FakeServices) -> None:
    trial = fake.run_trial("P001", "right", None)
    assert trial is not None and trial.status == "rejected"
    html = clinician.get(f"/results/{trial.id}").text
    assert "Not scorable" in html and "Why it could not be scored" in html
    assert "no hand was seen" in html
    assert 'class="score"' not in html


def test_patient_sees_the_last_result_without_clinician_parts(app: Flask, fake: FakeServices) -> None:
    patient = hand_over(app.test_client(), "P001")
    assert "No result yet" in patient.get("/results/last", follow_redirects=True).text
    trial = fake.run_trial("P001", "left", 1)
    assert trial is not None
    resp = patient.get("/results/last")
    assert resp.status_code == 302 and resp.location.endswith(f"/results/{trial.id}")
    html = patient.get(resp.location).text
    assert "Partial flexion" in html
    assert "P001" not in html and 'name="comment"' not in html and "landmarks" not in html
    doc = patient.get(f"/api/trials/{trial.id}").get_json()
    assert "patient_code" not in doc and doc["automatic"]["score"] == 1


def test_clinician_label_from_the_form_and_the_api(clinician: FlaskClient, fake: FakeServices) -> None:
    trial = fake.run_trial("P001", "right", 2)
    assert trial is not None
    token = csrf(clinician)
    resp = clinician.post(
        f"/results/{trial.id}/label", data={"csrf_token": token, "score": "1", "comment": "thumb stiff"}
    )
    assert resp.status_code == 302
    labels = fake.store.labels_for(trial.id)
    assert [(lab.score, lab.note) for lab in labels] == [(1, "thumb stiff")]
    assert fake.store.get_trial(trial.id).score.final_score == 2  # type: ignore[union-attr]  # stored beside it
    html = clinician.get(f"/results/{trial.id}").text
    assert "thumb stiff" in html and "Your score was saved" in html
    api = clinician.post(f"/api/trials/{trial.id}/label", json={"score": None, "comment": "hand left view"},
                         headers={"X-CSRF-Token": token})  # fmt: skip
    assert api.status_code == 201 and api.get_json()["score"] is None
    assert fake.store.labels_for(trial.id)[-1].score is None
    for bad in ({"score": 3}, {"score": True}, {}, {"score": 1, "comment": "x" * 1001}):
        r = clinician.post(f"/api/trials/{trial.id}/label", json=bad, headers={"X-CSRF-Token": token})
        assert r.status_code == 400, bad
    bad_form = clinician.post(f"/results/{trial.id}/label", data={"csrf_token": token, "score": "7"})
    assert bad_form.status_code == 302 and len(fake.store.labels_for(trial.id)) == 2
    assert (
        clinician.post(
            "/api/trials/999/label", json={"score": 1}, headers={"X-CSRF-Token": token}
        ).status_code
        == 404
    )
    audit = fake.store.list_audit()
    assert [a.action for a in audit][:2] == ["label", "label"]


# --------------------------------------------------------------------------- history & status


def _history(fake: FakeServices) -> None:
    now = datetime.now(UTC)
    fake.add_past_trial("P001", "right", 0, now - timedelta(days=30))
    fake.add_past_trial("P001", "right", 1, now - timedelta(days=20), label=1)
    fake.add_past_trial("P001", "right", None, now - timedelta(days=10))
    fake.add_past_trial("P002", "left", 2, now - timedelta(days=5))


def test_history_table_plot_and_filters(clinician: FlaskClient, fake: FakeServices) -> None:
    _history(fake)
    html = clinician.get("/history?patient=P001").text
    assert html.count("<tr>") == 1 + 3
    assert "Scores over time" in html and "<svg" in html and "Clinician score" in html
    assert "P002" not in html.split("<tbody>")[1]
    since = (datetime.now(UTC) - timedelta(days=15)).astimezone().date().isoformat()
    recent = clinician.get(f"/history?patient=P001&from={since}").text
    assert recent.count("<tr>") == 1 + 1 and "Not scorable" in recent
    scored = clinician.get("/history?status=scored").text
    assert scored.count("<tr>") == 1 + 3
    until = (datetime.now(UTC) - timedelta(days=25)).astimezone().date().isoformat()
    assert clinician.get(f"/history?to={until}").text.count("<tr>") == 1 + 1
    assert "No patient with code" in clinician.get("/history?patient=NOPE").text
    assert "must be a date" in clinician.get("/history?from=yesterday").text


def test_api_trials_filters_and_paging(clinician: FlaskClient, fake: FakeServices) -> None:
    _history(fake)
    doc = clinician.get("/api/trials?patient=P001&limit=2").get_json()
    assert len(doc["trials"]) == 2 and doc["trials"][0]["patient_code"] == "P001"
    page2 = clinician.get("/api/trials?patient=P001&limit=2&offset=2").get_json()
    assert doc["trials"][0]["status"] == "rejected"  # newest first
    assert len(page2["trials"]) == 1 and page2["trials"][0]["score"] == 0
    assert clinician.get("/api/trials?status=bogus").status_code == 400
    assert clinician.get("/api/trials?limit=x").status_code == 400
    one = clinician.get(f"/api/trials/{doc['trials'][1]['id']}").get_json()
    assert one["label"]["score"] == 1
    assert one["label_history"][0]["current"] and one["automatic"]["probabilities"]


def test_status_page(patient: FlaskClient) -> None:
    html = patient.get("/status").text
    for needle in ("Flexscore 0.1.0", "Running for", "Disk free", "Camera OK", "Models", "Settings",
                   "Live viewers at most"):  # fmt: skip
        assert needle in html


def test_models_from_manifest(tmp_path: Path) -> None:
    assert models_from_manifest(tmp_path) == ()
    (tmp_path / "manifest.json").write_text(
        '{"models": {"hand_landmark_lite_int8": {"kind": "landmark", "complexity": "lite", '
        '"precision": "int8", "sha256": "0123456789abcdef", "bytes": 10}}}'
    )
    (m,) = models_from_manifest(tmp_path, {"hand_landmark_lite_int8"})
    assert (m.variant, m.sha256, m.in_use) == ("lite int8", "0123456789ab", True)


# --------------------------------------------------------------------------- pure parts


def test_trial_outcome_maps_a_rejection(fake: FakeServices) -> None:
    info = TrialInfo(seq=1, side="left", patient_id=None, origin="web", started_at=datetime.now(UTC),
                     reasons=(QualityReason("hand_missing", "hand gone"),))  # fmt: skip
    out = trial_outcome(StateChange(RecorderState.RECORDING, RecorderState.REJECTED, 0.0, info))
    assert out is not None and out.status == "rejected" and out.score is None
    assert out.reasons == [{"code": "hand_missing", "message": "hand gone"}]
    assert trial_outcome(StateChange(RecorderState.IDLE, RecorderState.COUNTDOWN, 0.0, info)) is None


def test_plots_have_axes_units_and_descriptions(fake: FakeServices) -> None:
    trial = fake.run_trial("P001", "right", 2)
    assert trial is not None
    series = trial_series(fake.store.load_trial(trial.id))
    assert series.flexion.shape == (200, 4) and series.flexion.max() > 80
    svg = str(flexion_svg(series))
    assert svg.startswith("<svg") and "<title" in svg and "<desc" in svg
    assert svg.count("<polyline") == 5
    now = datetime.now(UTC)
    hist = str(history_svg([HistoryPoint(now, 2, 1, "scored"), HistoryPoint(now, None, None, "rejected")]))
    assert "NS" in hist and "Automatic score" in hist
    assert "No trials" in str(history_svg([]))


def test_openapi_describes_every_api_route(app: Flask) -> None:
    doc = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    assert doc["openapi"].startswith("3.")
    spec = {re.sub(r"\{[a-z_]+\}", "X", p): {m.upper() for m in ops} for p, ops in doc["paths"].items()}
    html_pages = {"/", "/results/last", "/results/X", "/history", "/status", "/export"}
    seen = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:int:)?[a-z_]+>", "X", rule.rule)
        methods = set(rule.methods or ()) - {"HEAD", "OPTIONS"}
        if path in html_pages:
            continue
        assert path in spec, f"{rule.rule} is missing from docs/openapi.yaml"
        assert methods <= spec[path], f"{rule.rule} {methods} vs {spec[path]}"
        seen.add(path)
    assert set(spec) == seen, "docs/openapi.yaml lists routes the app does not have"
