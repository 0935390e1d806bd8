"""Issue 21's acceptance: the real ``flexscore run`` daemon publishing to a real Mosquitto
(Debian's, started here on a free loopback port with a password file and an ACL that lets
each unit write only under ``<prefix>/<its user>/#``).

* a trial arrives on ``…/trials`` once, with the stored trial's uuid and score (and a label
  as a second message of the same trial); ``…/available`` is retained ``online`` and turns
  ``offline`` after ``kill -9``;
* broker down: three trials are stored and queued; when the broker is back they arrive in
  order with their stored uuids; the daemon killed while its messages are sent but not
  acknowledged, then restarted, loses nothing (the re-sent ones carry the same message id);
* a unit cannot publish under another unit's topics; a wrong password is a clear status;
* ``flexscore fleet`` lists two units after two daemons ran.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import FINAL, Daemon, daemon_env, db_rows, flexscore_exe, wait_for
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fleet_helpers import (
    CLINIC,
    AckWithholdingProxy,
    Collector,
    Mosquitto,
    fleet_config,
    wait_fleet_state,
)

pytestmark = pytest.mark.slow  # real daemons and trials


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One broker for the module; each test uses its own topic prefix."""
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    """Daemons, collectors, proxies and processes to end after the test, whatever happens."""
    things: list[Any] = []
    yield things
    for t in reversed(things):
        if isinstance(t, Daemon):
            t.cleanup()
        elif isinstance(t, subprocess.Popen):
            if t.poll() is None:
                t.kill()
            t.wait()
            for stream in (t.stdout, t.stderr):
                if stream is not None:
                    stream.close()
        elif isinstance(t, Collector):
            t.stop()
        elif isinstance(t, AckWithholdingProxy):
            t.close()
        elif isinstance(t, Mosquitto):
            t.stop()


def clinic_args(broker: Mosquitto, tmp: Path, prefix: str) -> list[str]:
    pw = broker.password_file(CLINIC[0], CLINIC[1])
    return ["--broker", broker.url, "--username", CLINIC[0], "--password-file", str(pw), "--prefix", prefix]


def retained(broker: Mosquitto, topic: str) -> list[str]:
    """What a new subscriber gets right away on ``topic`` (the retained message, if any)."""
    c = Collector(broker, [topic]).start()
    try:
        c.barrier()
    finally:
        c.stop()
    return [m.payload.decode() for m in c.on(topic)]


def trials_in_db(db: Path) -> list[dict[str, Any]]:
    rows = db_rows(
        db,
        "SELECT t.id, t.uuid, t.status, (SELECT final_score FROM scores s WHERE s.trial_id = t.id "
        "ORDER BY s.id DESC LIMIT 1) AS score FROM trials t ORDER BY t.id",
    )
    return [dict(r) for r in rows]


def press_trial(d: Daemon, n_before: int) -> None:
    """One trial from the button (the control socket), until it is stored as finished."""
    assert d.press() == "press: countdown"
    wait_for(
        lambda: len([t for t in trials_in_db(d.db) if t["status"] in FINAL]) == n_before + 1,
        90,
        "the trial's outcome in the store",
        0.1,
    )
    d.wait_state("idle", "result", "rejected", "error", "cancelled")


class LineReader:
    """The lines a child process prints, collected on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self._t = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._t.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))


def test_a_trial_arrives_once_with_its_uuid_and_score_and_available_follows_the_unit(
    broker: Mosquitto, tmp_path: Path, cleanup: list[Any]
) -> None:
    prefix = "t1"
    # the clinic's consumer: flexscore fleet --follow --json
    follow = subprocess.Popen(
        [flexscore_exe(), "fleet", *clinic_args(broker, tmp_path, prefix), "--follow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=daemon_env(),
    )
    cleanup.append(follow)
    assert follow.stderr is not None
    assert "following t1/+/trials" in follow.stderr.readline()
    lines = LineReader(follow)
    collector = Collector(broker, [f"{prefix}/#"]).start()
    cleanup.append(collector)

    cfg = fleet_config(
        tmp_path / "kit1.toml", broker.url, "kit1", password_file=broker.password_file("kit1"), prefix=prefix
    )
    d = Daemon(tmp_path / "state", "--config", str(cfg))
    cleanup.append(d)
    d.wait_ready()
    wait_fleet_state(d, "connected")
    assert retained(broker, "t1/kit1/available") == ["online"]
    collector.wait(lambda: collector.on("t1/kit1/status"), "the retained status")
    status = collector.on("t1/kit1/status")[-1]
    assert status.json()["camera"] == "ok" and status.json()["software_version"]

    d.login()
    # the sample clip (not mirrored without the demo default) shows the patient's left hand
    started = d.post_json("/api/trials/start", {"patient_code": "P-fleet-1", "side": "left"})
    assert started["started"] is True
    wait_for(lambda: lines.lines, 90, "the trial on t1/kit1/trials (flexscore fleet --follow)")
    stored = trials_in_db(d.db)
    assert len(stored) == 1 and stored[0]["status"] in FINAL
    msg = json.loads(lines.lines[0])
    assert msg["trial_uuid"] == stored[0]["uuid"] and msg["trial_id"] == stored[0]["id"]
    assert msg["score"] == (stored[0]["score"] if stored[0]["status"] == "scored" else None)
    assert msg["status"] == stored[0]["status"] and msg["event"] == "outcome"
    assert (msg["patient_code"], msg["side"], msg["item"], msg["unit_id"]) == (
        "P-fleet-1",
        "left",
        "mass_flexion",
        "kit1",
    )
    assert "landmarks" not in json.dumps(msg)

    # a clinician label: the same trial again, a new message id, the label (never its comment)
    d.post_json(f"/api/trials/{stored[0]['id']}/label", {"score": 1, "comment": "Jane Roe's hand"})
    wait_for(lambda: len(lines.lines) >= 2, 30, "the labelled trial's message")
    again = json.loads(lines.lines[1])
    assert again["trial_uuid"] == msg["trial_uuid"] and again["message_id"] != msg["message_id"]
    assert (again["event"], again["revision"], again["label"]["score"]) == ("label", 1, 1)
    wait_for(lambda: d.status()["fleet"]["queued"] == 0, 30, "an empty outbox")

    # once each on the broker: one outcome message and one label message for the trial
    on_trials = [m.json() for m in collector.on("t1/kit1/trials")]
    assert [(m["trial_uuid"], m["event"]) for m in on_trials] == [
        (msg["trial_uuid"], "outcome"),
        (msg["trial_uuid"], "label"),
    ]
    fhir = [m.json() for m in collector.on("t1/kit1/trials/fhir")]
    assert len(fhir) == 2
    QuestionnaireResponse.model_validate(fhir[-1])
    tags = {t["system"]: t["code"] for t in fhir[-1]["meta"]["tag"]}
    assert tags["urn:flexscore:trial-uuid"] == msg["trial_uuid"]
    assert "Jane" not in json.dumps(fhir) + json.dumps(on_trials)

    d.kill9()  # no shutdown code runs: the broker publishes the last will
    collector.wait(
        lambda: [m for m in collector.on("t1/kit1/available") if m.payload == b"offline"], "the last will"
    )
    assert retained(broker, "t1/kit1/available") == ["offline"]


def test_broker_down_then_back_and_a_kill_mid_send_lose_nothing(tmp_path: Path, cleanup: list[Any]) -> None:
    b = Mosquitto(tmp_path / "own-broker", persistence=True).start()
    cleanup.append(b)
    # the clinic's consumer has a session the broker keeps (with persistence, across restarts)
    first = Collector(b, ["flexscore/kit2/trials"], session="clinic-integration").start()
    first.stop()
    b.stop()  # the broker is down from the unit's first start on

    proxy = AckWithholdingProxy(b.port)  # between unit and broker; withholds the PUBACKs
    cleanup.append(proxy)
    pw = b.password_file("kit2")
    cfg = fleet_config(tmp_path / "via-proxy.toml", proxy.url, "kit2", password_file=pw)
    d1 = Daemon(tmp_path / "state", "--config", str(cfg))
    cleanup.append(d1)
    d1.wait_ready()
    assert d1.status()["fleet"]["state"] == "waiting for broker"  # not an error
    for n in range(3):
        press_trial(d1, n)
    stored = trials_in_db(d1.db)
    assert len(stored) == 3 and len({t["uuid"] for t in stored}) == 3
    queued = d1.status()["fleet"]["queued"]
    assert queued >= 3  # the trials and the status messages, in the store

    b.start()  # back, with the consumer's session
    proxy.start()
    collector = Collector(b, ["flexscore/kit2/trials"], session="clinic-integration").start()
    cleanup.append(collector)
    # the broker gets (and delivers) the unit's messages, the unit never gets the PUBACKs
    collector.wait(lambda: collector.on("flexscore/kit2/trials"), "a first trial via the proxy")
    d1.kill9()  # mid-send: some sent (never acknowledged), the rest not yet
    collector.barrier()  # all the broker had got before the kill has arrived
    before_kill = len(collector.on("flexscore/kit2/trials"))
    assert 1 <= before_kill <= 3 and proxy.withheld >= before_kill
    kept = db_rows(d1.db, "SELECT COUNT(*) FROM outbox WHERE kind = 'trial' AND topic = 'trials'")[0][0]
    assert kept == 3  # nothing is removed without the broker's acknowledgement

    cfg2 = fleet_config(tmp_path / "direct.toml", b.url, "kit2", password_file=pw)
    d2 = Daemon(tmp_path / "state", "--config", str(cfg2))
    cleanup.append(d2)
    d2.wait_ready()
    wait_for(lambda: d2.status()["fleet"]["queued"] == 0, 60, "the outbox to empty")
    got = [m.json() for m in collector.on("flexscore/kit2/trials")]
    firsts: dict[str, dict[str, Any]] = {}
    for m in got:  # the consumer's dedupe: by message id
        if m["message_id"] in firsts:
            assert m == firsts[m["message_id"]]  # a re-sent message is the same message
        firsts.setdefault(m["message_id"], m)
    unique = list(firsts.values())
    assert [m["trial_uuid"] for m in unique] == [t["uuid"] for t in stored]  # in order, none lost
    assert [m["status"] for m in unique] == [t["status"] for t in stored]
    assert len(got) == before_kill + 3  # the ones sent before the kill came again, once
    assert db_rows(d2.db, "SELECT COUNT(*) FROM outbox")[0][0] == 0


def test_a_wrong_password_is_a_clear_status_and_a_unit_cannot_write_another_units_topics(
    broker: Mosquitto, tmp_path: Path, cleanup: list[Any]
) -> None:
    prefix = "t3"
    refused_before = broker.output().count("not authorised")
    collector = Collector(broker, [f"{prefix}/#"]).start()
    cleanup.append(collector)
    wrong = broker.password_file("kit3", "not-the-password")
    bad_pw = Daemon(
        tmp_path / "bad-pw",
        "--config",
        str(fleet_config(tmp_path / "bad-pw.toml", broker.url, "kit3", password_file=wrong, prefix=prefix)),
    )
    cleanup.append(bad_pw)
    # kit4's unit id with kit3's (valid) credentials: the ACL lets kit3 write under t3/kit3/# only
    other = Daemon(
        tmp_path / "other",
        "--config",
        str(
            fleet_config(
                tmp_path / "other.toml",
                broker.url,
                "kit4",
                username="kit3",
                password_file=broker.password_file("kit3"),
                prefix=prefix,
            )
        ),
    )
    cleanup.append(other)
    bad_pw.wait_ready()
    other.wait_ready()

    fleet = wait_fleet_state(bad_pw, "auth failed")
    assert fleet["queued"] >= 1  # its status messages wait in the store
    bad_pw.login()
    detail = bad_pw.status()["fleet"]["detail"]
    assert "Not authorized" in detail and "fleet.password_file" in detail
    with bad_pw.open("/status") as page:
        html = page.read().decode()
    assert "fleet: auth failed" in html and "fleet.password_file" in html
    # retried with back-off, not a crash loop: the daemon keeps serving and says it once
    wait_for(
        lambda: broker.output().count("not authorised") >= refused_before + 3, 60, "three refused attempts"
    )
    assert bad_pw.proc.poll() is None and bad_pw.status()["camera"] == "ok"
    assert bad_pw.output().count("fleet: auth failed") == 1

    fleet = wait_fleet_state(other, "not authorized")
    other.login()
    assert "t3/kit4/#" in other.status()["fleet"]["detail"]
    assert other.status()["fleet"]["queued"] >= 1  # kept, not lost
    assert not [m for m in collector.messages if m.topic.startswith("t3/kit4/")]
    assert retained(broker, "t3/kit4/available") == []
    assert other.proc.poll() is None


def test_flexscore_fleet_lists_two_units_after_two_daemons_ran(
    broker: Mosquitto, tmp_path: Path, cleanup: list[Any]
) -> None:
    prefix = "t4"
    daemons = []
    for unit in ("kit1", "kit2"):
        cfg = fleet_config(
            tmp_path / f"{unit}.toml",
            broker.url,
            unit,
            password_file=broker.password_file(unit),
            prefix=prefix,
        )
        d = Daemon(tmp_path / unit, "--config", str(cfg))
        cleanup.append(d)
        daemons.append(d)
    for d in daemons:
        d.wait_ready()
        wait_fleet_state(d, "connected")
        wait_for(lambda d=d: d.status()["fleet"]["queued"] == 0, 30, "the status sent")
    for d in daemons:
        rc, _ = d.terminate()
        assert rc == 0
    out = subprocess.run(
        [flexscore_exe(), "fleet", *clinic_args(broker, tmp_path, prefix)],
        capture_output=True,
        text=True,
        timeout=60,
        env=daemon_env(),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()]
    assert rows[0][:3] == ["UNIT", "AVAILABLE", "STATE"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("kit1", "offline"), ("kit2", "offline")], out.stdout
    assert all(r[2] == "idle" and r[3] == "ok" for r in rows[1:]), out.stdout


def test_the_clinic_command_says_what_is_wrong(broker: Mosquitto, tmp_path: Path) -> None:
    base = [flexscore_exe(), "fleet", "--broker"]
    cases = [
        ([*base, "mqtt://broker.example:1883"], "--broker: plain mqtt:// sends results unencrypted"),
        (
            [*base, broker.url, "--username", "clinic", "--password-file", str(tmp_path / "none")],
            "--password-file: cannot read",
        ),
        (
            [
                *base,
                broker.url,
                "--username",
                "clinic",
                "--password-file",
                str(broker.password_file("clinic", "wrong")),
            ],
            "the broker refused: Not authorized",
        ),
    ]
    for args, expect in cases:
        out = subprocess.run(args, capture_output=True, text=True, timeout=60, env=daemon_env(), check=False)
        assert out.returncode == 2, out
        assert out.stderr.startswith("flexscore: error: ") and expect in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
