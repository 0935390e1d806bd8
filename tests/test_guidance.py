"""Live guidance (issue 18): what the hand needs before a recording, the countdown that waits
for it, the close/open cues, and the recording that stops when the hand leaves.

Synthetic observations on a fake clock: nothing sleeps, every time is the recorder's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pytest

from device.config import ConfigError, TrialConfig, config_from_dict
from device.trial.guidance import GuidanceWindow, check_frame, judge
from device.trial.recorder import Cue, RecorderState, RecorderTiming, StateChange, TrialRecorder
from device.vision.types import HandObservation

S = RecorderState
FPS = 30.0


def hand(
    t: float = 0.0,
    *,
    label: str | None = "Left",  # an unmirrored camera: MediaPipe's "Left" is the right hand
    centre: tuple[float, float] = (320.0, 240.0),
    size: float = 200.0,
    edge_on: bool = False,
) -> HandObservation:
    """An open hand of ``size`` px about ``centre``, with world landmarks facing the camera
    (or edge-on)."""
    rng = np.random.default_rng(7)
    unit = rng.uniform(-0.5, 0.5, size=(21, 3))
    unit[:, 2] = 0.0
    unit[:, :2] /= np.abs(unit[:, :2]).max(axis=0) * 2  # spans exactly [-0.5, 0.5]
    lm = np.empty((21, 3), np.float32)
    lm[:, 0] = centre[0] + unit[:, 0] * size
    lm[:, 1] = centre[1] + unit[:, 1] * size
    lm[:, 2] = 0.0
    world = (unit * 0.08).astype(np.float32)
    if edge_on:  # the palm plane turned to contain the view axis: x → z
        world = world[:, [2, 1, 0]]
    return HandObservation(0, t, (640, 480), True, 0.95, label, 0.95, lm, world)


def nothing(t: float = 0.0) -> HandObservation:
    return HandObservation(0, t, (640, 480), False)


CFG = TrialConfig(duration_s=6.0)


def verdict(obs: HandObservation, side: str | None = None) -> str:
    return judge([check_frame(obs, 0.0, CFG, mirrored=False)] * 5, side, CFG).code  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the judgement


def test_each_problem_is_named_with_what_to_do() -> None:
    assert verdict(hand()) == "ready"
    assert verdict(nothing()) == "no_hand"
    assert judge([], None, CFG).code == "no_hand"
    g = judge([check_frame(hand(), 0, CFG, False)] * 5, "left", CFG)
    assert g.code == "wrong_side" and g.message == "That is the right hand: show the left hand."
    assert verdict(hand(), "right") == "ready"
    assert verdict(hand(label=None), "left") == "ready"  # no handedness: not judged
    assert verdict(hand(centre=(60.0, 240.0))) == "hand_cut_by_edge"
    # with world landmarks only the finger knuckles count (the gate's rule): a small
    # overhang of the whole hand past the border is not "cut" unless a knuckle is
    assert verdict(hand(size=45.0)) == "hand_too_small"  # gate's 40 px × 1.25
    assert verdict(hand(size=55.0)) == "ready"
    assert verdict(hand(edge_on=True)) == "fingers_hidden"
    assert "closer" in judge([check_frame(hand(size=30.0), 0, CFG, False)], None, CFG).message


def test_the_window_tolerates_a_missed_frame_and_forgets_old_frames() -> None:
    win = GuidanceWindow(CFG)
    for i in range(15):
        win.add(hand() if i != 7 else nothing(), i / FPS)
    assert win.judge(None, 14 / FPS).ready  # one miss in 15 frames
    for i in range(15, 25):
        win.add(nothing(), i / FPS)
    assert win.judge(None, 24 / FPS).code == "no_hand"  # mostly gone now
    win.add(hand(), 25 / FPS)
    assert win.judge(None, 25 / FPS + 0.8).ready  # a slow camera: the newest frame still counts
    assert win.judge(None, 10.0).code == "no_hand"  # frames stopped: none in the window


def test_new_config_keys_are_validated() -> None:
    cfg = config_from_dict({"trial": {"hand_wait_s": 5, "hand_lost_s": 0.5}})
    assert (cfg.trial.hand_wait_s, cfg.trial.hand_lost_s) == (5.0, 0.5)
    assert TrialConfig().hand_lost_s <= 1.0  # the acceptance: stops within 2 s
    with pytest.raises(ConfigError, match=r"trial\.hand_lost_s"):
        config_from_dict({"trial": {"hand_lost_s": 3}})
    with pytest.raises(ConfigError, match=r"trial\.hand_wait_s"):
        config_from_dict({"trial": {"hand_wait_s": -1}})
    timing = RecorderTiming.from_config(cfg.trial)
    assert timing.watches_hand and timing.hand_wait_s == 5.0 and timing.recording_s == 6.0
    assert not RecorderTiming().watches_hand


# ----------------------------------------------------------------------------- the recorder


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Run:
    rec: TrialRecorder
    clock: Clock
    changes: list[StateChange] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)

    @property
    def states(self) -> list[RecorderState]:
        return [c.new for c in self.changes]

    def feed(self, seconds: float, make: object = hand) -> None:
        for _ in range(round(seconds * FPS)):
            self.clock.now += 1 / FPS
            self.rec.on_observation(make(self.clock.now))  # type: ignore[operator]

    def until_recording(self) -> None:
        while self.rec.state is S.COUNTDOWN:
            self.feed(1 / FPS)


def run(side: str | None = None, **timing: float) -> Run:
    clock = Clock()
    cfg = TrialConfig(duration_s=6.0, side=side)  # type: ignore[arg-type]
    rec = TrialRecorder(
        lambda trial: type("R", (), {"score": 2})(),
        trial_config=cfg,
        timing=RecorderTiming.from_config(cfg, hand_wait_s=10.0, **timing),
        submit=lambda fn: fn(),
        clock=clock,
    )
    r = Run(rec, clock)
    rec.add_listener(r.changes.append)
    rec.add_cue_listener(r.cues.append)
    return r


def test_a_ready_hand_counts_down_records_and_is_cued_to_close_then_open() -> None:
    r = run()
    r.feed(0.5)
    snap = r.rec.snapshot()
    assert snap["guidance"] == {"code": "ready", "message": "Hand in view: keep it open and still."}
    assert snap["state"] == "idle" and snap["phase"] is None
    r.rec.start()
    r.feed(1.0)
    snap = r.rec.snapshot()
    assert snap["phase"] == "counting" and snap["remaining_s"] == pytest.approx(2.0, abs=0.05)
    assert snap["prompt"] == "Get ready: keep the hand open and still."
    r.feed(2.1)
    assert r.rec.state is S.RECORDING
    snap = r.rec.snapshot()
    assert snap["phase"] == "close" and snap["prompt"] == "Close your hand now, as far as you can."
    r.feed(3.0)
    assert r.rec.snapshot()["phase"] == "close"
    r.feed(0.4)  # 55 % of 6 s: the open cue
    assert r.rec.snapshot()["phase"] == "open"
    assert r.rec.snapshot()["prompt"] == "Now open it again."
    r.feed(2.7)
    assert r.states == [S.COUNTDOWN, S.RECORDING, S.SCORING, S.RESULT]
    phases = [(c.code, c.at - r.changes[1].at) for c in r.cues if c.kind == "phase"]
    assert [p for p, _ in phases] == ["close", "open"]
    assert phases[0][1] == 0.0 and phases[1][1] == pytest.approx(3.3, abs=1 / FPS)
    assert [c.code for c in r.cues if c.kind == "guidance"] == ["ready"]


def test_no_hand_holds_the_countdown_then_ends_it_not_started_with_the_reason() -> None:
    r = run()
    r.rec.start()
    r.feed(5.0, nothing)
    snap = r.rec.snapshot()
    assert r.rec.state is S.COUNTDOWN and snap["phase"] == "waiting"
    assert snap["remaining_s"] == 3.0  # the count has not begun
    assert snap["guidance"]["code"] == "no_hand"
    assert snap["prompt"] == "No hand in view: hold the open hand in front of the camera."
    r.feed(7.9, nothing)  # 3 s countdown + 10 s wait = 13 s
    assert r.rec.state is S.COUNTDOWN
    r.feed(0.2, nothing)
    assert r.states == [S.COUNTDOWN, S.REJECTED]  # never recorded
    info = r.rec.info
    assert info is not None and info.recording_started_at is None and info.trial is None
    assert [x.code for x in info.reasons] == ["no_hand"]
    assert info.reasons[0].message.startswith("no hand in view: hold the open hand")
    assert "did not start" in info.reasons[0].message
    snap = r.rec.snapshot()
    assert snap["reasons"] == ["no_hand"] and snap["prompt"].startswith("No hand in view: hold")


def test_the_count_begins_when_the_hand_arrives_and_restarts_when_it_leaves() -> None:
    r = run()
    r.rec.start()
    r.feed(4.0, nothing)
    r.feed(2.0)  # the hand arrives: counting, 2 s of 3 done
    assert r.rec.snapshot()["phase"] == "counting" and r.rec.state is S.COUNTDOWN
    r.feed(1.0, nothing)  # it leaves before the count ends
    assert r.rec.snapshot()["phase"] == "waiting" and r.rec.remaining() == 3.0
    r.feed(2.9)
    assert r.rec.state is S.COUNTDOWN  # a full 3 s again (the window needs a few frames)
    r.feed(0.5)
    assert r.rec.state is S.RECORDING
    assert [c.code for c in r.cues if c.kind == "guidance"] == ["no_hand", "ready", "no_hand", "ready"]


def test_the_wrong_hand_is_named_and_a_trial_of_it_does_not_start() -> None:
    r = run(side="left")
    r.rec.start()
    r.feed(13.1)  # the right hand all along
    info = r.rec.info
    assert r.states == [S.COUNTDOWN, S.REJECTED] and info is not None
    assert info.reasons[0].code == "wrong_side"
    assert info.reasons[0].message.startswith(
        "the right hand was in view, but the left hand is being tested: show the left hand"
    )
    # a reference trial records the other hand: the right one is right for it
    r.clock.now += 10
    r.rec.tick()
    r.rec.start(reference=True)
    r.feed(3.2)
    assert r.rec.state is S.RECORDING


def test_a_hand_that_leaves_the_recording_stops_it_within_hand_lost_s() -> None:
    r = run()
    r.rec.start()
    r.feed(3.2)
    assert r.rec.state is S.RECORDING
    r.feed(2.0)
    r.feed(0.9, nothing)
    assert r.rec.state is S.RECORDING  # a moment is not enough
    r.feed(0.2, nothing)  # 1 s without a hand (hand_lost_s, default)
    assert r.states[-1] is S.REJECTED
    info = r.rec.info
    assert info is not None and [x.code for x in info.reasons] == ["hand_lost"]
    assert "left the picture 2.1 s into the recording and stayed away for 1.0 s" in info.reasons[0].message
    assert info.trial is not None and info.trial.num_frames == info.frames >= 90  # kept
    assert r.rec.snapshot()["prompt"].startswith("The hand left the picture")


def test_no_hand_from_the_recording_start_is_no_hand_and_a_camera_stall_is_still_camera_lost() -> None:
    r = run(hand_lost_s=0.5)
    r.rec.start()
    r.until_recording()
    r.feed(0.6, nothing)
    info = r.rec.info
    assert info is not None and r.rec.state is S.REJECTED
    assert info.reasons[0].code == "no_hand" and "first 0.5 s of the recording" in info.reasons[0].message
    # frames that stop arriving are the camera, not the hand
    r.clock.now += 10
    r.rec.tick()
    r.rec.start()
    r.feed(3.2)
    r.clock.now += 2.5
    r.rec.tick()
    info = r.rec.info
    assert info is not None and info.reasons[0].code == "camera_lost"


def test_without_hand_watching_the_countdown_just_runs() -> None:
    clock = Clock()
    rec = TrialRecorder(lambda t: None, timing=RecorderTiming(), submit=lambda fn: fn(), clock=clock)
    rec.start()
    clock.now += 3.0
    rec.tick()
    assert rec.state is S.RECORDING and rec.snapshot()["guidance"] is None


# ----------------------------------------------------------------------------- the page


def test_the_page_says_why_with_the_web_fake() -> None:
    """The fake appliance (real recorder, real store) behind the real page: the status the
    live page polls carries the guidance and the one sentence it shows."""
    from test_web_support import csrf, login, make_app

    from device.web.fake import FakeServices

    with FakeServices() as fake:
        app = make_app(fake)
        clinician = app.test_client()
        login(clinician, "clinician")
        fake.hand_visible = False
        fake.step(15)
        doc = clinician.get("/api/status").get_json()
        assert doc["guidance"]["code"] == "no_hand" and doc["prompt"].startswith("No hand in view")
        assert "No hand in view: hold the open hand" in clinician.get("/").text  # shown on the page
        resp = clinician.post("/api/trials/start", json={"patient_code": "P001", "side": "right"},
                              headers={"X-CSRF-Token": csrf(clinician)})  # fmt: skip
        assert resp.status_code == 202
        fake.step(int(13.2 * fake.fps))  # the whole wait: still no hand
        doc = clinician.get("/api/status").get_json()
        assert doc["state"] == "rejected" and doc["reasons"] == ["no_hand"]
        assert "the recording did not start" in doc["prompt"] and doc["last_trial"] is None
        # the hand is there for the countdown, then leaves the recording: stopped, stored, why
        fake.hand_visible = True
        trial = fake.run_trial("P001", "right", None)  # None: out of view while recording
        assert trial is not None and trial.status == "rejected"
        assert trial.reasons[0]["code"] == "no_hand" and "recording" in trial.reasons[0]["message"]
        info = fake.recorder.info
        assert info is not None and info.frames <= fake.fps * 1.2  # stopped after ~1 s, not 6 s
        doc = clinician.get("/api/status").get_json()
        stopped = r"No hand was seen in the first 1\.\d s of the recording, so it was stopped"
        assert re.match(stopped, doc["prompt"])
        anon = app.test_client().get("/api/status").get_json()
        assert anon["prompt"] is None  # anonymous: codes only
