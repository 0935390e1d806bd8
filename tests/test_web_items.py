"""Assessment items on the page, in the history and in every export (issue 17), and anonymous
screening said wherever a trial without a patient shows (issue 18) — through the appliance
core with fake parts."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from flask.testing import FlaskClient
from test_web_support import csrf

from device.trial.recorder import RecorderTiming
from device.web.fake import FakeServices

FAST = RecorderTiming(countdown_s=0.5, recording_s=3.0)


@pytest.fixture()
def fake() -> Iterator[FakeServices]:
    with FakeServices(timing=FAST) as f:
        yield f


def run(fake: FakeServices) -> None:
    for _ in range(300):
        fake.step()
        if not fake.recorder.busy:
            return
    raise AssertionError("the trial never ended")


def test_both_items_from_one_recording_started_on_the_page(
    fake: FakeServices, clinician: FlaskClient
) -> None:
    page = clinician.get("/").text
    assert 'name="item"' in page and 'value="mass_extension"' in page and 'value="all"' in page
    fake.next_score = 2
    resp = clinician.post(
        "/trial/start",
        data={"csrf_token": csrf(clinician), "patient_code": "P-IT1", "side": "right", "item": "all"},
    )
    assert resp.status_code == 302
    run(fake)
    rows = {r.item: r for r in fake.store.list_trials(limit=5)}
    flex, ext = rows["mass_flexion"], rows["mass_extension"]
    assert ext.recording_of == flex.id

    shown = clinician.get(f"/results/{ext.id}").text
    assert "Mass finger extension" in shown and f"same recording as trial #{flex.id}" in shown
    assert "Full active extension" in shown  # the item's own score meaning
    assert "Mass finger flexion" in clinician.get(f"/results/{flex.id}").text
    assert "Mass finger extension" in clinician.get(f"/results/{ext.id}/report").text

    history = clinician.get("/history?item=mass_extension").text
    assert f"/results/{ext.id}" in history and f'/results/{flex.id}"' not in history
    assert "Unknown assessment item" in clinician.get("/history?item=thumb").text
    api = clinician.get("/api/trials?item=mass_flexion").get_json()
    assert [t["item"] for t in api["trials"]] == ["mass_flexion"]

    table = list(csv.DictReader(io.StringIO(clinician.get("/export/trials.csv").text)))
    by_id = {int(r["trial_id"]): r for r in table}
    assert by_id[ext.id]["item"] == "mass_extension" and by_id[ext.id]["recording_of"] == str(flex.id)
    assert by_id[flex.id]["item"] == "mass_flexion" and by_id[flex.id]["anonymous"] == "false"
    doc = clinician.get("/export/trials.json").get_json()
    assert {t["item"] for t in doc["trials"]} == {"mass_flexion", "mass_extension"}

    day = flex.started_at.astimezone().date().isoformat()
    fhir = clinician.get(f"/export/fhir/P-IT1/{day}.json").get_json()
    QuestionnaireResponse.model_validate(fhir)
    answers = {it["linkId"]: it for it in fhir["item"]}
    assert answers["mass-flexion"]["answer"][0]["valueInteger"] == 2
    assert answers["mass-extension"]["answer"][0]["valueInteger"] == 2
    assert "extension" in answers["mass-extension"]["text"]
    trial_items = [
        next(x["answer"][0]["valueString"] for x in g["item"] if x["linkId"] == "trial-item")
        for g in fhir["item"]
        if g["linkId"] == "trial"
    ]
    assert sorted(trial_items) == ["mass_extension", "mass_flexion"]


def test_an_unknown_item_is_refused_with_the_known_ones(clinician: FlaskClient) -> None:
    resp = clinician.post(
        "/api/trials/start",
        json={"patient_code": "P-IT2", "side": "right", "item": "thumb"},
        headers={"X-CSRF-Token": csrf(clinician)},
    )
    assert resp.status_code == 400
    assert "mass_flexion" in resp.get_json()["error"] and "thumb" in resp.get_json()["error"]


def test_a_flexion_only_session_keeps_its_one_answer(fake: FakeServices, clinician: FlaskClient) -> None:
    rec = fake.run_trial("P-IT3", "right", 1)
    assert rec is not None and rec.item == "mass_flexion"
    day = rec.started_at.astimezone().date().isoformat()
    fhir = clinician.get(f"/export/fhir/P-IT3/{day}.json").get_json()
    links = [it["linkId"] for it in fhir["item"]]
    assert "mass-flexion" in links and "mass-extension" not in links


def test_anonymous_screening_is_said_on_the_result_report_history_and_exports(
    fake: FakeServices, clinician: FlaskClient
) -> None:
    rec = fake.run_trial(None, "right", 2)  # the fake is set up for anonymous screening
    assert rec is not None and rec.patient_id is None
    assert "Anonymous screening" in clinician.get(f"/results/{rec.id}").text
    assert "Anonymous screening" in clinician.get(f"/results/{rec.id}/report").text
    assert "anonymous" in clinician.get("/history").text
    row = next(csv.DictReader(io.StringIO(clinician.get("/export/trials.csv").text)))
    assert row["anonymous"] == "true" and row["patient_code"] == ""
    assert clinician.get("/export/trials.json").get_json()["trials"][0]["anonymous"] is True


def test_bind_this_unit_from_the_page(fake: FakeServices, clinician: FlaskClient) -> None:
    resp = clinician.post(
        "/unit/bind", data={"csrf_token": csrf(clinician), "patient_code": "HOME9", "side": "left"}
    )
    assert resp.status_code == 302
    assert fake.bound_patient() == ("HOME9", "left")
    assert "The button and patient mode record for HOME9" in clinician.get("/").text
    assert clinician.get("/api/unit/patient").get_json() == {"patient_code": "HOME9", "side": "left"}
    de = clinician.get("/", headers={"Accept-Language": "de"}).text
    assert "Dieses Gerät diesem Patienten zuordnen" in de
    clinician.post("/unit/bind", data={"csrf_token": csrf(clinician), "patient_code": ""})
    assert fake.bound_patient() is None


def test_the_live_page_offers_recent_patients_newest_first(
    fake: FakeServices, clinician: FlaskClient
) -> None:
    fake.store.add_patient("NOTRIAL")
    for code in ("P-OLD", "P-NEW"):
        fake.run_trial(code, "right", 2)
    assert [p.code for p in fake.store.recent_patients(3)] == ["P-NEW", "P-OLD", "NOTRIAL"]
    page = clinician.get("/").text
    chips = page.split('id="recent"')[1].split("</div>")[0]
    assert chips.index('data-code="P-NEW"') < chips.index('data-code="P-OLD"')
    assert 'list="recent-patients"' in page  # free entry stays, with the codes suggested
