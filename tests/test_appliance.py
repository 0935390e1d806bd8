"""The appliance core (issue 17, patients of issue 18): one implementation of start/cancel,
patients and the unit's binding, disk-full refusal, outcome → stored record and the "trial
stored" event — driven through the fake parts (synthetic camera, fake clock, stand-in RNN),
so these are the real appliance's rules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.appliance import NO_PATIENT, Appliance, TrialStored
from device.config import ConfigError, UnitConfig, load_config
from device.errors import InputError
from device.trial.recorder import RecorderTiming
from device.web.fake import FakeServices

FAST = RecorderTiming(countdown_s=0.5, recording_s=3.0)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[FakeServices]:
    """A unit that is not set up for anonymous screening."""
    with FakeServices(state_dir=tmp_path, timing=FAST, unit=UnitConfig()) as f:
        yield f


def press_until_done(fake: FakeServices) -> None:
    fake.press()
    for _ in range(200):
        fake.step()
        if not fake.recorder.busy:
            return
    raise AssertionError("the trial never ended")


def test_the_fake_is_the_core() -> None:
    assert issubclass(FakeServices, Appliance)
    tree = ast.parse((ROOT / "device/web/fake.py").read_text())
    defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    # the appliance's rules are not re-implemented by the fake
    assert not defined & {"_score_in_session", "_outcome", "_patient_for", "refusal", "press", "status"}


def test_a_press_without_patient_or_binding_is_refused_and_says_how_to_fix_it(strict: FakeServices) -> None:
    before = strict.store.count_trials()
    assert strict.press() == "rejected"
    snap = strict.status()
    assert snap["reasons"] == ["no_patient"]
    assert strict.recorder.info is not None
    assert "Bind this unit" in strict.recorder.info.reasons[0].message
    assert strict.store.count_trials() == before  # nothing stored
    with pytest.raises(InputError, match="not bound to a patient"):
        strict.start_trial("", None)
    assert NO_PATIENT.startswith("no patient")


def test_a_button_trial_on_a_bound_unit_is_stored_under_that_patient(strict: FakeServices) -> None:
    strict.bind_patient("HOME07", "right")
    assert strict.bound_patient() == ("HOME07", "right")
    assert strict.status()["unit_patient"] == "HOME07"
    press_until_done(strict)
    rec = strict.store.last_trial()
    assert rec is not None and rec.status == "scored" and rec.origin == "button"
    patient = strict.store.find_patient("HOME07")
    assert patient is not None and rec.patient_id == patient.id and rec.side == "right"
    assert strict.status()["patient"] == "HOME07"
    # the binding is kept in the store: it survives a restart of the unit
    assert strict.store.get_setting("unit_patient") == {"code": "HOME07", "side": "right"}
    strict.bind_patient("", None)
    assert strict.bound_patient() is None


def test_the_config_can_bind_the_unit_and_the_page_binding_wins(tmp_path: Path) -> None:
    with FakeServices(state_dir=tmp_path, timing=FAST, unit=UnitConfig(patient="CFG1", side="right")) as f:
        assert f.bound_patient() == ("CFG1", "right")
        f.bind_patient("PAGE2", None)
        assert f.bound_patient() == ("PAGE2", None)
        rec = f.run_trial(None, None, 2)  # the page's Start with no code
        assert rec is not None and f.store.find_patient("PAGE2") is not None
        assert rec.patient_id == f.store.find_patient("PAGE2").id  # type: ignore[union-attr]


def test_anonymous_screening_records_without_patient_and_says_so(tmp_path: Path) -> None:
    with FakeServices(state_dir=tmp_path, timing=FAST, unit=UnitConfig(anonymous=True)) as f:
        rec = f.run_trial(None, "right", 2)
        assert rec is not None and rec.patient_id is None and rec.status == "scored"
        assert f.status()["anonymous"] is True


def test_unit_config_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unit\.patient"):
        UnitConfig(patient="Jane Doe")
    with pytest.raises(ConfigError, match=r"unit\.anonymous"):
        UnitConfig(patient="P1", anonymous=True)
    path = tmp_path / "c.toml"
    path.write_text('[unit]\npatient = "HOME07"\nside = "left"\nbed = 3\n')
    with pytest.raises(ConfigError, match="bed"):
        load_config(path)


def test_a_full_disk_refuses_before_a_patient_is_created(strict: FakeServices) -> None:
    strict.min_free_bytes = 1 << 62
    with pytest.raises(InputError, match="disk is full"):
        strict.start_trial("NEW1", "right")
    assert strict.store.find_patient("NEW1") is None
    strict.bind_patient("HOME1", "right")
    assert strict.press() == "rejected"
    assert strict.status()["reasons"] == ["disk_full"]


def test_a_start_while_busy_creates_no_patient(strict: FakeServices) -> None:
    assert strict.start_trial("P1", "right")
    assert not strict.start_trial("P2", "right")
    assert strict.store.find_patient("P2") is None


def test_trial_stored_event_follows_each_written_outcome(strict: FakeServices) -> None:
    seen: list[TrialStored] = []
    strict.on_trial_stored(seen.append)

    def broken(_: TrialStored) -> None:
        raise RuntimeError("an integration failed")

    strict.on_trial_stored(broken)  # must not affect the trial or other listeners
    rec = strict.run_trial("P5", "right", 1)
    assert rec is not None and rec.status == "scored"
    assert [(e.trial_id, e.status, e.patient_id) for e in seen] == [(rec.id, "scored", rec.patient_id)]
    strict.run_trial("P5", "right", None)  # hand out of view: rejected, also stored
    last = strict.store.last_trial()
    assert last is not None and seen[-1].trial_id == last.id and seen[-1].status == "rejected"
    # a countdown cancelled never had a row: no event
    strict.start_trial("P5", "right")
    strict.cancel_trial()
    assert len(seen) == 2


def test_a_reference_trial_uses_the_configured_side_like_the_appliance(tmp_path: Path) -> None:
    with FakeServices(state_dir=tmp_path, timing=FAST) as f:
        f.store.add_patient("R1")  # no affected side known
        with pytest.raises(InputError, match="affected side"):
            f.start_trial("R1", None, reference=True)
        rec = f.run_trial("R1", "right", 2, reference=True)
        assert rec is not None and rec.role == "reference" and rec.side == "left"


def test_an_extension_trial_is_stored_and_served_as_that_item(tmp_path: Path) -> None:
    with FakeServices(state_dir=tmp_path, timing=FAST) as f:
        seen: list[TrialStored] = []
        f.on_trial_stored(seen.append)
        f.next_score = 1  # the synthetic patient opens part of the way
        assert f.start_trial("P1", "right", item="mass_extension")
        assert f.status()["items"] == ["mass_extension"]
        for _ in range(200):
            f.step()
            if not f.recorder.busy:
                break
        rec = f.store.last_trial()
        assert rec is not None and rec.item == "mass_extension" and rec.recording_of is None
        assert rec.status == "scored" and rec.score is not None and rec.score.final_score == 1
        assert [e.item for e in seen] == ["mass_extension"]
        with pytest.raises(InputError, match="unknown assessment item 'thumb'"):
            f.start_trial("P1", "right", item="thumb")


def test_one_recording_for_all_items_is_one_row_per_item(tmp_path: Path) -> None:
    with FakeServices(state_dir=tmp_path, timing=FAST) as f:
        seen: list[TrialStored] = []
        f.on_trial_stored(seen.append)
        f.next_score = 2
        assert f.start_trial("P2", "right", item="all")
        for _ in range(200):
            f.step()
            if not f.recorder.busy:
                break
        rows = f.store.list_trials(limit=5)
        by_item = {r.item: r for r in rows}
        assert set(by_item) == {"mass_flexion", "mass_extension"}
        first, second = by_item["mass_flexion"], by_item["mass_extension"]
        assert second.recording_of == first.id and first.recording_of is None
        assert first.status == second.status == "scored"
        assert first.score is not None and first.score.final_score == 2
        assert second.score is not None and second.score.final_score == 2
        # the same landmarks, kept with each row
        assert f.store.load_trial(first.id).num_frames == f.store.load_trial(second.id).num_frames
        expect = [(first.id, "mass_flexion"), (second.id, "mass_extension")]
        assert [(e.trial_id, e.item) for e in seen] == expect
        assert [r.id for r in f.store.list_trials(item="mass_extension")] == [second.id]


def test_each_row_keeps_its_items_rule_version(tmp_path: Path) -> None:
    with FakeServices(state_dir=tmp_path, timing=FAST) as f:
        f.next_score = 2
        assert f.start_trial("P3", "right", item="all")
        for _ in range(200):
            f.step()
            if not f.recorder.busy:
                break
        versions = {r.item: r.score.rule_version for r in f.store.list_trials(limit=5) if r.score}
        assert versions == {"mass_flexion": "rom-rule-1", "mass_extension": "ext-rule-1"}
