"""The fleet's store side (no broker): trial uuids, the outbox written in the same transaction
as the trial or label, the messages' content, the bound, and the ``[fleet]`` config checks."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from device.cli import EXIT_ERROR, main
from device.config import FleetConfig, config_from_dict
from device.errors import ConfigError, StoreError
from device.fleet import FleetPublisher
from device.store import NewScore, OutboxMessage, SaveEvent, Store
from device.store.migrations import MIGRATIONS
from device.trial.types import Trial


def make_trial(n: int = 30) -> Trial:
    lm = np.random.default_rng(0).uniform(100, 300, size=(n, 21, 3)).astype(np.float32)
    return Trial(
        landmarks=lm,
        t=np.arange(n) / 30.0,
        presence=np.full(n, 0.95, np.float32),
        handedness=tuple("Right" for _ in range(n)),
        image_size=(640, 480),
        side="right",
    )


SCORE = NewScore(
    final_score=2, model_score=2, rule_score=2, probabilities=(0.05, 0.15, 0.8), confidence=0.8,
    model_version="scorer_hand_int8@abc", rule_version="rom-rule-1", mode="absolute",
)  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "flexscore.db") as s:
        yield s


@pytest.fixture
def publisher(store: Store) -> FleetPublisher:
    """Registered on the store (its hook and bound); never started: no broker needed."""
    cfg = FleetConfig(broker="mqtt://127.0.0.1:1", unit_id="ward3-kit1")
    return FleetPublisher(cfg, store, services=None, software_version="9.9.9")


def outbox(store: Store) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.kind, m.topic, json.loads(m.payload)) for m in store.outbox()]


def scored_trial(store: Store, patient: str | None = "P001") -> int:
    pid = store.add_patient(patient, "right") if patient else None
    tid = store.begin_trial(side="right", patient_id=pid, origin="web")
    store.finish_trial(tid, "scored", trial=make_trial(), score=SCORE)
    return tid


def test_trials_stored_before_the_outbox_get_a_uuid_and_new_trials_too(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    for version in (1, 2, 3):
        for statement in MIGRATIONS[version - 1]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, '2026-01-01T00:00:00+00:00')", (version,))
    for i in (1, 2):
        conn.execute(
            "INSERT INTO trials (id, side, status, started_at) VALUES (?, 'left', 'scored', ?)",
            (i, f"2026-01-0{i}T10:00:00+00:00"),
        )
    conn.commit()
    conn.close()
    with Store(db) as s:
        old = [s.get_trial(i) for i in (1, 2)]
        new = s.get_trial(s.begin_trial(side="left"))
        ids = [t.uuid for t in (*old, new) if t is not None]
        assert len(ids) == 3 and len(set(ids)) == 3
        assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
        assert s.outbox_count() == 0
        # trials stored before assessment items (schema 4) read as mass flexion
        assert [t.item for t in old if t is not None] == ["mass_flexion", "mass_flexion"]


def test_a_finished_trial_queues_its_messages_in_the_same_transaction(
    store: Store, publisher: FleetPublisher
) -> None:
    tid = scored_trial(store)
    record = store.get_trial(tid)
    assert record is not None and record.uuid
    (kind, topic, msg), (fkind, ftopic, fhir) = outbox(store)
    assert (kind, topic, fkind, ftopic) == ("trial", "trials", "trial", "trials/fhir")
    assert msg["trial_uuid"] == record.uuid and msg["trial_id"] == tid
    assert (msg["unit_id"], msg["patient_code"], msg["item"], msg["side"]) == (
        "ward3-kit1",
        "P001",
        "mass_flexion",
        "right",
    )
    assert (msg["status"], msg["score"], msg["probabilities"], msg["confidence"]) == (
        "scored",
        2,
        [0.05, 0.15, 0.8],
        0.8,
    )
    assert (
        msg["model_versions"]["scorer"] == "scorer_hand_int8@abc"
        and msg["model_versions"]["rule"] == "rom-rule-1"
    )
    assert (msg["event"], msg["revision"], msg["label"], msg["software_version"]) == (
        "outcome",
        0,
        None,
        "9.9.9",
    )
    assert msg["started_at"] and msg["finished_at"] and uuid.UUID(msg["message_id"])
    assert "landmarks" not in json.dumps(msg) and "world" not in json.dumps(msg)
    # the FHIR message: the session's QuestionnaireResponse, tagged with the trial and message
    qr = QuestionnaireResponse.model_validate(fhir)
    assert qr.subject is not None and fhir["subject"]["identifier"]["value"] == "P001"
    tags = {t["system"]: t["code"] for t in fhir["meta"]["tag"]}
    assert tags["urn:flexscore:trial-uuid"] == record.uuid
    assert tags["urn:flexscore:message-id"] == store.outbox()[1].message_id
    assert publisher.status()["queued"] == 2


def test_a_trial_without_patient_has_no_fhir_message(store: Store, publisher: FleetPublisher) -> None:
    scored_trial(store, patient=None)
    assert [(k, t) for k, t, _ in outbox(store)] == [("trial", "trials")]
    assert outbox(store)[0][2]["patient_code"] is None


def test_a_failing_message_saves_nothing(store: Store) -> None:
    def broken(_store: Store, _event: SaveEvent) -> list[OutboxMessage]:
        raise RuntimeError("payload bug")

    store.add_save_hook(broken)
    tid = store.begin_trial(side="right")
    with pytest.raises(StoreError, match=r"could not be made \(payload bug\), so nothing was saved"):
        store.finish_trial(tid, "scored", trial=make_trial(), score=SCORE)
    record = store.get_trial(tid)
    assert record is not None and record.status == "recording" and record.score is None
    assert not record.has_landmarks and store.outbox_count() == 0
    store.remove_save_hook(broken)
    store.finish_trial(tid, "scored", trial=make_trial(), score=SCORE)
    assert store.get_trial(tid).status == "scored"  # type: ignore[union-attr]


def test_a_label_is_a_new_message_of_the_same_trial_without_its_comment(
    store: Store, publisher: FleetPublisher
) -> None:
    tid = scored_trial(store)
    store.add_label(tid, "clinician", 1, "Jane Roe, room 12")
    msgs = [m for k, t, m in outbox(store) if t == "trials"]
    assert len(msgs) == 2
    first, label = msgs
    assert label["trial_uuid"] == first["trial_uuid"] and label["message_id"] != first["message_id"]
    assert (label["event"], label["revision"], label["label"]["score"], label["score"]) == ("label", 1, 1, 2)
    assert label["label"]["clinician"] == "clinician" and "comment" not in label["label"]
    assert "Jane" not in "".join(m.payload for m in store.outbox())  # nor in the FHIR message


def test_trials_a_crash_left_open_are_reported_interrupted(store: Store, publisher: FleetPublisher) -> None:
    tid = store.begin_trial(side="left", origin="button")
    assert store.outbox_count() == 0  # nothing for a trial still recording
    assert store.reap_interrupted() == 1
    (_, _, msg), *_ = outbox(store)
    assert (msg["trial_id"], msg["status"], msg["score"]) == (tid, "interrupted", None)
    assert msg["reasons"][0]["code"] == "interrupted"


def test_the_outbox_drops_the_oldest_status_messages_never_trial_messages(store: Store) -> None:
    def status(i: int) -> OutboxMessage:
        return OutboxMessage(f"s{i}", "status", "status", json.dumps({"n": i}), retain=True)

    def trial(i: int) -> OutboxMessage:
        return OutboxMessage(f"t{i}", "trial", "trials", json.dumps({"n": i}))

    store.outbox_limit = 5
    store.enqueue([status(i) for i in range(4)])
    store.enqueue([trial(0), trial(1)])
    assert [m.message_id for m in store.outbox()] == ["s1", "s2", "s3", "t0", "t1"]
    store.enqueue([trial(i) for i in range(2, 6)])  # over the bound: only trials are left
    assert [m.message_id for m in store.outbox()] == [f"t{i}" for i in range(6)]
    store.enqueue([status(9)])  # a status beyond the bound goes itself
    assert [m.message_id for m in store.outbox()] == [f"t{i}" for i in range(6)]
    sent = store.outbox(limit=2)
    store.outbox_done(m.id for m in sent)
    assert [m.message_id for m in store.outbox(after_id=0)] == [f"t{i}" for i in range(2, 6)]
    assert [m.message_id for m in store.outbox(after_id=store.outbox()[1].id)] == ["t4", "t5"]


@pytest.mark.parametrize(
    ("section", "expect"),
    [
        ({"broker": "http://x", "unit_id": "a"}, "'fleet.broker': must start with mqtts://"),
        ({"broker": "mqtt://broker.example", "unit_id": "a"}, "plain mqtt:// sends results unencrypted"),
        ({"broker": "mqtt://localhost:1883", "unit_id": "a"}, None),
        ({"broker": "mqtt://[::1]:1883", "unit_id": "a"}, None),
        ({"broker": "mqtts://u:secret@broker.example", "unit_id": "a"}, "must not carry credentials"),
        ({"broker": "mqtts://broker.example", "unit_id": "ward 3"}, "'fleet.unit_id': must be 1-32"),
        ({"broker": "mqtts://broker.example", "unit_id": "x" * 33}, "'fleet.unit_id'"),
        ({"broker": "mqtts://broker.example", "unit_id": "a", "topic_prefix": "a/#"}, "'fleet.topic_prefix'"),
        ({"broker": "mqtts://broker.example", "unit_id": "a", "password_file": "/x"}, "needs fleet.username"),
        ({"broker": "mqtts://broker.example", "unit_id": "a", "password": "x"}, "unknown config key(s) 'password'"),  # noqa: E501,
        ({"broker": "mqtts://broker.example", "unit_id": "a", "max_queued": 10}, "'fleet.max_queued'"),
    ],
)  # fmt: skip
def test_the_fleet_section_is_validated(section: dict[str, Any], expect: str | None) -> None:
    if expect is None:
        cfg = config_from_dict({"fleet": section}).fleet
        assert cfg is not None and cfg.port == 1883 and not cfg.tls
        return
    with pytest.raises(ConfigError) as err:
        config_from_dict({"fleet": section})
    assert expect in str(err.value)


def test_fleet_is_off_without_the_section() -> None:
    assert config_from_dict({}).fleet is None
    cfg = config_from_dict({"fleet": {"broker": "mqtts://b.example", "unit_id": "k"}}).fleet
    assert cfg is not None and (cfg.host, cfg.port, cfg.tls) == ("b.example", 8883, True)


def write_config(tmp: Path, **fleet: str) -> Path:
    body = f'[app]\nstate_dir = "{tmp / "state"}"\n[fleet]\n' + "".join(
        f'{k} = "{v}"\n' for k, v in fleet.items()
    )
    path = tmp / "config.toml"
    path.write_text(body)
    return path


def test_check_config_reads_the_password_and_ca_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"broker": "mqtts://broker.example:8883", "unit_id": "ward3-kit1", "username": "ward3-kit1"}
    missing = write_config(tmp_path, **base, password_file=str(tmp_path / "nope.pass"))
    assert main(["check-config", str(missing)]) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("flexscore: error: ")
    assert "'fleet.password_file': cannot read" in err[0] and "nope.pass" in err[0]

    pw = tmp_path / "mqtt.pass"
    pw.write_text("s3cret\n")
    no_ca = write_config(tmp_path, **base, password_file=str(pw), ca_file=str(tmp_path / "ca.pem"))
    assert main(["check-config", str(no_ca)]) == EXIT_ERROR
    assert "'fleet.ca_file': cannot read" in capsys.readouterr().err

    good = write_config(tmp_path, **base, password_file=str(pw))
    assert main(["check-config", str(good)]) == 0
    out = capsys.readouterr().out
    assert "fleet mqtts://broker.example:8883 as ward3-kit1" in out and "s3cret" not in out
