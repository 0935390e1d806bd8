"""Issue 18: a corrected clinician label. The newest label is current everywhere (API, result
page, history, CSV, JSON, FHIR, site validation); the earlier one stays visible with its time,
clinician and comment."""

from __future__ import annotations

import csv
import io
import json

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from flask.testing import FlaskClient
from test_web_support import csrf

from device.scoring.agreement import collect
from device.web.fake import FakeServices


def _two_labels(clinician: FlaskClient, fake: FakeServices) -> int:
    """A scored trial labelled 1 ("mis-tap"), then corrected to 2: through the page's form
    first, then through the API."""
    trial = fake.run_trial("P001", "right", 2)
    assert trial is not None
    form = {"csrf_token": csrf(clinician), "score": "1", "comment": "mis-tap, index only", "clinician": "AB"}
    assert clinician.post(f"/results/{trial.id}/label", data=form).status_code == 302
    resp = clinician.post(
        f"/api/trials/{trial.id}/label",
        json={"score": 2, "comment": "full fist on review", "clinician": "CD"},
        headers={"X-CSRF-Token": csrf(clinician)},
    )
    assert resp.status_code == 201
    assert resp.get_json()["current"] is True and resp.get_json()["replaced"] == 1
    return trial.id


def test_the_second_label_is_current_in_the_api(clinician: FlaskClient, fake: FakeServices) -> None:
    tid = _two_labels(clinician, fake)
    doc = clinician.get(f"/api/trials/{tid}").get_json()
    assert doc["label"]["score"] == 2 and doc["label"]["comment"] == "full fist on review"
    assert doc["label"]["clinician"] == "CD" and doc["label"]["current"] is True
    hist = doc["label_history"]
    assert [(h["score"], h["comment"], h["clinician"], h["current"]) for h in hist] == [
        (1, "mis-tap, index only", "AB", False),
        (2, "full fist on review", "CD", True),
    ]
    assert hist[0]["created_at"] <= hist[1]["created_at"]
    listed = clinician.get("/api/trials").get_json()["trials"][0]
    assert listed["label"]["score"] == 2 and len(listed["label_history"]) == 2


def test_the_pages_mark_the_current_label_and_keep_the_first(
    clinician: FlaskClient, fake: FakeServices
) -> None:
    tid = _two_labels(clinician, fake)
    page = clinician.get(f"/results/{tid}").text
    history = page.split('id="label-history"')[1].split("</ul>")[0]
    current, replaced = history.split('class="replaced"')
    assert "full fist on review" in current and "current" in current and "CD" in current
    assert "mis-tap, index only" in replaced and "AB" in replaced
    row = clinician.get("/history?patient=P001").text.split("<tbody>")[1]
    cell = row.split('class="num clinician-label"')[1].split("</td>")[0]
    assert cell.split(">", 1)[1].strip().startswith("2") and "corrected once" in cell
    report = clinician.get(f"/results/{tid}/report").text
    label = report.split('id="report-label">')[1].split("</dd>")[0]
    assert "<strong>2</strong>" in label and "full fist on review" in label
    assert "1 earlier score replaced" in label


def test_exports_and_validation_use_the_current_label(clinician: FlaskClient, fake: FakeServices) -> None:
    tid = _two_labels(clinician, fake)
    rows = list(csv.DictReader(io.StringIO(clinician.get("/export/trials.csv").text)))
    row = next(r for r in rows if int(r["trial_id"]) == tid)
    assert row["clinician_score"] == "2" and row["clinician_comment"] == "full fist on review"
    assert row["clinician"] == "CD" and row["clinician_labelled_at"]
    earlier = json.loads(row["earlier_labels"])  # no comment is lost
    assert [(e["score"], e["comment"], e["clinician"]) for e in earlier] == [(1, "mis-tap, index only", "AB")]

    doc = json.loads(clinician.get("/export/trials.json").text)
    t = next(t for t in doc["trials"] if t["id"] == tid)
    assert t["label"]["score"] == 2
    assert [h["comment"] for h in t["label_history"]] == ["mis-tap, index only", "full fist on review"]

    trial = fake.store.get_trial(tid)
    assert trial is not None
    day = trial.started_at.astimezone().date().isoformat()
    fhir = json.loads(clinician.get(f"/export/fhir/P001/{day}.json").text)
    QuestionnaireResponse.model_validate(fhir)
    flex = next(it for it in fhir["item"] if it["linkId"] == "mass-flexion")
    assert flex["answer"][0]["valueInteger"] == 2  # the clinician's current score
    group = next(it for it in fhir["item"] if it["linkId"] == "trial")
    items = {it["linkId"]: it for it in group["item"]}
    assert items["clinician-score"]["answer"] == [{"valueInteger": 2}]
    assert items["clinician-comment"]["answer"] == [{"valueString": "full fist on review"}]
    old = items["clinician-label-history"]["item"][0]["item"]
    old_by_id = {it["linkId"]: it["answer"][0] for it in old}
    assert old_by_id["earlier-score"] == {"valueInteger": 1}
    assert old_by_id["earlier-comment"] == {"valueString": "mis-tap, index only"}
    assert old_by_id["earlier-name"] == {"valueString": "AB"}

    (labelled,) = collect(fake.store)
    assert labelled.label == 2


def test_bad_initials_are_refused(clinician: FlaskClient, fake: FakeServices) -> None:
    trial = fake.run_trial("P001", "right", 2)
    assert trial is not None
    token = csrf(clinician)
    for bad in ("x" * 33, "A\nB"):
        resp = clinician.post(
            f"/api/trials/{trial.id}/label",
            json={"score": 1, "clinician": bad},
            headers={"X-CSRF-Token": token},
        )
        assert resp.status_code == 400 and "initials" in resp.get_json()["error"]
    assert fake.store.labels_for(trial.id) == []
    resp = clinician.post(f"/api/trials/{trial.id}/label", json={"score": 1}, headers={"X-CSRF-Token": token})
    assert resp.get_json()["clinician"] == "clinician"  # one shared password: initials optional
