"""Web side of scoring against the unaffected hand (issue 10), on the fake appliance."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from flask import Flask
from flask.testing import FlaskClient
from test_web_support import csrf, login, make_app

from device.errors import StoreError
from device.scoring.reference import apply_reference
from device.web import shutdown
from device.web.fake import FakeServices
from device.web.plots import flexion_svg, trial_series


@pytest.fixture
def fake() -> Iterator[FakeServices]:
    with FakeServices() as f:
        yield f


@pytest.fixture
def app(fake: FakeServices) -> Iterator[Flask]:
    a = make_app(fake)
    yield a
    shutdown(a)


def client_as(app: Flask, role: str) -> FlaskClient:
    c = app.test_client()
    login(c, role)
    return c


def test_reference_start_is_for_clinicians_with_csrf(app: Flask, fake: FakeServices) -> None:
    body = {"patient_code": "P009", "side": "left", "reference": True}
    anon = app.test_client()
    assert anon.post("/api/trials/start", json=body, headers={"X-CSRF-Token": csrf(anon)}).status_code == 401
    patient = client_as(app, "patient")
    resp = patient.post("/api/trials/start", json=body, headers={"X-CSRF-Token": csrf(patient)})
    assert resp.status_code == 403 and "clinician" in resp.text
    resp = patient.post("/trial/start", data={**body, "reference": "1", "csrf_token": csrf(patient)})
    assert resp.status_code == 403
    assert fake.calls == []  # nothing started
    clin = client_as(app, "clinician")
    assert clin.post("/api/trials/start", json=body).status_code in (400, 403)  # no CSRF token
    assert fake.calls == []
    bad = clin.post(
        "/api/trials/start", json={**body, "reference": "maybe"}, headers={"X-CSRF-Token": csrf(clin)}
    )
    assert bad.status_code == 400
    nopatient = clin.post(
        "/api/trials/start", json={"side": "left", "reference": True}, headers={"X-CSRF-Token": csrf(clin)}
    )
    assert nopatient.status_code == 400 and "patient code" in nopatient.text
    resp = clin.post("/api/trials/start", json=body, headers={"X-CSRF-Token": csrf(clin)})
    assert resp.status_code == 202, resp.text
    status = resp.get_json()["status"]
    assert status["reference"] is True and status["side"] == "right"  # the other hand is recorded
    assert patient.get("/api/status").get_json()["reference"] is True  # patient mode sees it too
    page = patient.get("/").text
    assert 'id="reference-note"' in page and "unaffected" in page
    assert 'name="reference"' not in page  # but cannot start one
    assert 'name="reference"' in clin.get("/").text


def test_the_page_form_starts_a_reference(app: Flask, fake: FakeServices) -> None:
    clin = client_as(app, "clinician")
    data = {"patient_code": "P010", "side": "right", "reference": "1", "csrf_token": csrf(clin)}
    assert clin.post("/trial/start", data=data).status_code == 302
    info = fake.recorder.info
    assert info is not None and info.is_reference and info.side == "left"


def test_reference_then_affected_trial_result_page_and_exports(app: Flask, fake: FakeServices) -> None:
    ref = fake.run_trial("P011", "right", 2, reference=True)
    assert ref is not None
    assert ref.status == "scored", ref.reasons
    assert ref.is_reference and ref.side == "left" and ref.score is None
    assert ref.profile is not None and ref.profile["usable"]
    aff = fake.run_trial("P011", "right", 1)
    assert aff is not None and aff.status == "scored" and aff.score is not None
    assert (aff.score.mode, aff.score.reference_trial_id) == ("reference", ref.id)
    # the stored result is the fake scorer followed by apply_reference on the stored landmarks
    trial, reference = fake.store.load_trial(aff.id), fake.store.load_trial(ref.id)
    expect = apply_reference(fake._score(trial), trial, reference, fake.trial_config)
    assert expect.score == aff.score.final_score
    assert expect.details["reference"]["ratio"] == aff.score.detail["details"]["reference"]["ratio"]  # type: ignore[index]

    clin = client_as(app, "clinician")
    page = clin.get(f"/results/{aff.id}").text
    assert "Compared with the unaffected hand" in page and f"trial #{ref.id}" in page
    assert 'id="ratios"' in page and page.count('<tr><th scope="row">') == 4
    assert 'class="reference"' in page and "Unaffected hand, the reference" in page  # both curves
    assert "of both hands" in page
    ref_page = clin.get(f"/results/{ref.id}").text
    assert 'id="reference-recorded"' in ref_page and 'id="reference-profile"' in ref_page
    assert "Save my score" not in ref_page  # no Fugl-Meyer label for the unaffected hand
    token = csrf(clin)
    no_label = clin.post(f"/api/trials/{ref.id}/label", json={"score": 2}, headers={"X-CSRF-Token": token})
    assert no_label.status_code == 409 and "reference trial" in no_label.text
    clin.post(f"/results/{ref.id}/label", data={"score": "2", "csrf_token": token})
    assert fake.store.labels_for(ref.id) == []

    hist = clin.get("/history?patient=P011").text
    assert "reference: unaffected hand" in hist and "vs. unaffected hand" in hist
    with clin.session_transaction() as sess:  # the live page names the reference in use
        sess["patient_code"], sess["side"] = "P011", "right"
    live = clin.get("/").text
    assert 'id="session-reference"' in live and f"reference trial #{ref.id}" in live
    assert 'data-patient="P011"' in live  # live.js hides it once another code is typed
    with clin.session_transaction() as sess:  # issue 18: switching to another patient drops it
        sess["patient_code"] = "P099"
    assert 'id="session-reference"' not in clin.get("/").text

    rows = list(csv.DictReader(io.StringIO(clin.get("/export/trials.csv").text)))
    by_id = {int(r["trial_id"]): r for r in rows}
    assert (by_id[aff.id]["role"], by_id[aff.id]["mode"], by_id[aff.id]["reference_trial_id"]) == (
        "assessment", "reference", str(ref.id),
    )  # fmt: skip
    assert (by_id[ref.id]["role"], by_id[ref.id]["mode"], by_id[ref.id]["score"]) == ("reference", "", "")
    docs = {d["id"]: d for d in clin.get("/export/trials.json").get_json()["trials"]}
    assert docs[aff.id]["automatic"]["mode"] == "reference"
    assert docs[aff.id]["automatic"]["reference_trial_id"] == ref.id
    assert len(docs[aff.id]["automatic"]["reference"]["ratio"]) == 4
    assert docs[ref.id]["role"] == "reference" and docs[ref.id]["reference_profile"]["usable"]

    day = aff.started_at.astimezone().date().isoformat()
    doc = clin.get(f"/export/fhir/P011/{day}.json").get_json()
    QuestionnaireResponse.model_validate(doc)
    top = {i["linkId"]: i for i in doc["item"]}
    assert top["reference-used"]["answer"][0]["valueBoolean"] is True
    assert top["mass-flexion"]["answer"][0]["valueInteger"] == aff.score.final_score
    groups = [i for i in doc["item"] if i["linkId"] == "trial"]
    roles = [
        next(a["answer"][0]["valueString"] for a in g["item"] if a["linkId"] == "trial-role") for g in groups
    ]
    assert roles == ["reference", "assessment"]
    aff_items = {a["linkId"]: a["answer"][0] for a in groups[1]["item"]}
    assert aff_items["score-mode"] == {"valueString": "reference"}
    assert aff_items["reference-trial-id"] == {"valueInteger": ref.id}


def test_an_unusable_reference_is_reported_and_the_absolute_mode_used(app: Flask, fake: FakeServices) -> None:
    ref = fake.run_trial("P012", "left", 0, reference=True)  # the "unaffected" hand hardly closes
    assert ref is not None and ref.is_reference and ref.status == "rejected"
    assert any("hardly closed" in r["message"] for r in ref.reasons), ref.reasons
    aff = fake.run_trial("P012", "left", 2)
    assert aff is not None and aff.score is not None and aff.status == "scored"
    assert (aff.score.mode, aff.score.reference_trial_id) == ("absolute", ref.id)
    assert any("absolute mode" in r for r in aff.score.detail["reasons"])  # type: ignore[index]
    clin = client_as(app, "clinician")
    page = clin.get(f"/results/{aff.id}").text
    assert 'id="reference-unusable"' in page and "hardly closed" in page
    assert "Absolute (against a full fist)" in page and 'id="ratios"' not in page
    assert "Not usable as the reference" in clin.get(f"/results/{ref.id}").text
    day = aff.started_at.astimezone().date().isoformat()
    doc = clin.get(f"/export/fhir/P012/{day}.json").get_json()
    QuestionnaireResponse.model_validate(doc)
    assert {i["linkId"]: i for i in doc["item"]}["reference-used"]["answer"][0]["valueBoolean"] is False


def test_a_reference_whose_landmarks_cannot_be_read_leaves_the_absolute_mode_with_the_reason(
    fake: FakeServices,
) -> None:
    ref = fake.run_trial("P015", "right", 2, reference=True)
    assert ref is not None and ref.status == "scored"
    conn = sqlite3.connect(fake.state_dir / "flexscore.db")
    try:
        conn.execute("UPDATE landmarks SET data = ? WHERE trial_id = ?", (b"not an npz file", ref.id))
        conn.commit()
    finally:
        conn.close()
    aff = fake.run_trial("P015", "right", 2)
    assert aff is not None and aff.status == "scored" and aff.score is not None
    assert (aff.score.mode, aff.score.reference_trial_id) == ("absolute", ref.id)
    assert any(f"reference trial {ref.id} could not be read" in r for r in aff.score.detail["reasons"])  # type: ignore[index]


def test_a_store_that_cannot_be_asked_scores_absolute_with_the_reason(
    fake: FakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.run_trial("P016", "right", 2, reference=True)

    def locked(*args: object, **kwargs: object) -> None:
        raise StoreError("trial store is locked by another writer (read)")

    monkeypatch.setattr(fake.store, "session_reference", locked)
    aff = fake.run_trial("P016", "right", 2)
    assert aff is not None and aff.status == "scored" and aff.score is not None
    assert (aff.score.mode, aff.score.reference_trial_id) == ("absolute", None)
    assert any("could not be looked up" in r for r in aff.score.detail["reasons"])  # type: ignore[index]


def test_without_a_reference_trials_stay_absolute_and_another_patient_is_not_compared(
    fake: FakeServices,
) -> None:
    fake.run_trial("P013", "right", 2, reference=True)
    other = fake.run_trial("P014", "right", 1)  # another patient: no reference
    assert other is not None and other.score is not None
    assert (other.score.mode, other.score.reference_trial_id) == ("absolute", None)
    wrong_side = fake.run_trial("P013", "left", 1)  # the reference showed the left hand
    assert wrong_side is not None and wrong_side.score is not None
    assert wrong_side.score.mode == "absolute" and wrong_side.score.reference_trial_id is None


def test_the_plot_draws_the_reference_as_light_lines_with_a_legend(fake: FakeServices) -> None:
    a, b = fake._motion(1, "right"), fake._motion(2, "left")
    plain = str(flexion_svg(trial_series(a)))
    both = str(flexion_svg(trial_series(a), trial_series(b)))
    assert 'class="reference"' not in plain and "Unaffected" not in plain
    assert both.count('class="reference"') == 5  # four fingers and the openness
    assert "Unaffected hand, the reference" in both and "Affected hand (thick)" in both
    assert "stroke-opacity" in both and "<desc" in both and "Unaffected hand (reference" in both
