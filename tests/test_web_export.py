"""Exports: CSV, JSON, FHIR R4 QuestionnaireResponse (validated with fhir.resources), landmarks."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from flask.testing import FlaskClient

from device.store import decode_trial
from device.web.fake import FakeServices
from device.web.queries import CSV_COLUMNS, _cell


def _day(fake: FakeServices, trial_id: int) -> str:
    trial = fake.store.get_trial(trial_id)
    assert trial is not None
    return trial.started_at.astimezone().date().isoformat()


def _answers(items: list[dict], link_id: str) -> list[dict]:  # type: ignore[type-arg]
    return [a for it in items if it["linkId"] == link_id for a in it.get("answer", [])]


def test_csv_export(clinician: FlaskClient, fake: FakeServices) -> None:
    t1 = fake.run_trial("P001", "right", 2)
    t2 = fake.run_trial("P001", "right", None)
    assert t1 is not None and t2 is not None
    fake.store.add_label(t1.id, "clinician", 1, "=HYPERLINK(1)")
    resp = clinician.get("/export/trials.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_id = {int(r["trial_id"]): r for r in rows}
    assert by_id[t1.id]["score"] == "2" and by_id[t1.id]["clinician_score"] == "1"
    assert by_id[t1.id]["p2"] == "0.9000" and by_id[t1.id]["patient_code"] == "P001"
    assert by_id[t1.id]["clinician_comment"] == "'=HYPERLINK(1)"  # never a live formula
    assert by_id[t2.id]["status"] == "rejected" and by_id[t2.id]["score"] == ""
    assert by_id[t2.id]["reason_codes"] == "no_hand"
    only = list(csv.DictReader(io.StringIO(clinician.get("/export/trials.csv?status=rejected").text)))
    assert [int(r["trial_id"]) for r in only] == [t2.id]
    assert clinician.get("/export/trials.csv?patient=NOPE").status_code == 404
    assert clinician.get("/export/trials.csv?from=bad").status_code == 400


def test_csv_cells() -> None:
    assert _cell(None) == "" and _cell(True) == "true" and _cell(0.5) == "0.5000"
    assert _cell("-1+1") == "'-1+1" and _cell("@x") == "'@x" and _cell("fine") == "fine"


def test_json_export(clinician: FlaskClient, fake: FakeServices) -> None:
    t1 = fake.run_trial("P001", "left", 1)
    assert t1 is not None
    doc = json.loads(clinician.get("/export/trials.json").data)
    assert doc["format"] == "flexscore-trials-v1"
    (trial,) = doc["trials"]
    assert trial["id"] == t1.id and trial["side"] == "left" and trial["score"] == 1
    assert trial["automatic"]["rule_score"] == 1 and len(trial["automatic"]["probabilities"]) == 3
    assert trial["quality"]["ok"] is True and trial["has_landmarks"] is True


def test_fhir_questionnaire_response_validates(clinician: FlaskClient, fake: FakeServices) -> None:
    t1 = fake.run_trial("P001", "right", 1)
    t2 = fake.run_trial("P001", "right", 2)
    t3 = fake.run_trial("P001", "right", None)
    assert t1 and t2 and t3
    resp = clinician.get(f"/export/fhir/P001/{_day(fake, t1.id)}.json")
    assert resp.status_code == 200 and resp.mimetype == "application/fhir+json"
    doc = json.loads(resp.data)
    qr = QuestionnaireResponse.model_validate(doc)
    assert qr.status == "completed"
    assert doc["subject"]["identifier"]["value"] == "P001"
    (answer,) = _answers(doc["item"], "mass-flexion")
    assert answer["valueInteger"] == 2  # the best trial
    assert _answers(answer["item"], "score-source") == [{"valueString": "automatic"}]
    assert _answers(doc["item"], "affected-side") == [{"valueString": "right"}]
    groups = [it for it in doc["item"] if it["linkId"] == "trial"]
    assert len(groups) == 3
    assert _answers(groups[2]["item"], "trial-status") == [{"valueString": "rejected"}]
    assert "Jane" not in resp.text and "name" not in doc["subject"]


def test_fhir_uses_the_clinician_score(clinician: FlaskClient, fake: FakeServices) -> None:
    t1 = fake.run_trial("P_01", "left", 2)
    assert t1 is not None
    fake.store.add_label(t1.id, "clinician", 1, "fingertips did not reach the palm")
    doc = json.loads(clinician.get(f"/export/fhir/P_01/{_day(fake, t1.id)}.json").data)
    QuestionnaireResponse.model_validate(doc)
    (answer,) = _answers(doc["item"], "mass-flexion")
    assert answer["valueInteger"] == 1
    assert _answers(answer["item"], "score-source") == [{"valueString": "clinician"}]
    group = next(it for it in doc["item"] if it["linkId"] == "trial")
    assert _answers(group["item"], "clinician-comment") == [
        {"valueString": "fingertips did not reach the palm"}
    ]
    assert doc["id"] == f"fma-massflex-P-01-{_day(fake, t1.id)}"  # FHIR ids allow no '_'


def test_fhir_session_without_a_score_still_validates(clinician: FlaskClient, fake: FakeServices) -> None:
    t = fake.run_trial("P001", "right", None)
    assert t is not None
    doc = json.loads(clinician.get(f"/export/fhir/P001/{_day(fake, t.id)}.json").data)
    QuestionnaireResponse.model_validate(doc)
    item = next(it for it in doc["item"] if it["linkId"] == "mass-flexion")
    assert "answer" not in item


def test_fhir_sessions_are_per_day(clinician: FlaskClient, fake: FakeServices) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    fake.add_past_trial("P001", "right", 0, old)
    day = old.astimezone().date().isoformat()
    doc = json.loads(clinician.get(f"/export/fhir/P001/{day}.json").data)
    assert len([it for it in doc["item"] if it["linkId"] == "trial"]) == 1
    assert clinician.get("/export/fhir/P001/2001-01-01.json").status_code == 404
    assert clinician.get("/export/fhir/NOPE/2001-01-01.json").status_code == 404
    assert clinician.get("/export/fhir/P001/notaday.json").status_code == 404
    page = clinician.get("/export").text
    assert f"/export/fhir/P001/{day}.json" in page


def test_landmark_downloads(clinician: FlaskClient, fake: FakeServices) -> None:
    t = fake.run_trial("P001", "right", 2)
    assert t is not None
    stored = fake.store.load_trial(t.id)
    npz = clinician.get(f"/export/trials/{t.id}/landmarks.npz")
    assert npz.status_code == 200
    back = decode_trial(npz.data)
    assert np.array_equal(back.landmarks, stored.landmarks, equal_nan=True)
    doc = json.loads(clinician.get(f"/export/trials/{t.id}/landmarks.json").data)
    lm = np.array(doc["landmarks"], dtype=float)
    assert lm.shape == (stored.num_frames, 21, 3)
    assert np.allclose(lm, stored.landmarks, atol=0.01)
    assert len(doc["t"]) == stored.num_frames and doc["image_size"] == [640, 480]
    assert doc["world"] is None  # the fake tracker gives no world landmarks
    # a trial with world landmarks (metres) exports them beside the image landmarks
    world = np.where(stored.detected[:, None, None], np.float32(0.01) * np.arange(63).reshape(21, 3), np.nan)
    with_world = fake.store.begin_trial()
    fake.store.finish_trial(with_world, "scored", trial=replace(stored, world=world.astype(np.float32)))
    doc = json.loads(clinician.get(f"/export/trials/{with_world}/landmarks.json").data)
    assert "world: metres" in doc["units"]
    got = np.array(doc["world"], dtype=float)  # null (no hand) → NaN, as for "landmarks"
    np.testing.assert_allclose(got, world, atol=1e-5, equal_nan=True)
    cancelled_fake_trial = fake.store.begin_trial()
    fake.store.finish_trial(cancelled_fake_trial, "cancelled")
    assert clinician.get(f"/export/trials/{cancelled_fake_trial}/landmarks.json").status_code == 404
    assert clinician.get("/export/trials/424242/landmarks.npz").status_code == 404
