"""Spoken prompts (issue 18): the words (English and German), real espeak-ng rendering to WAV
files, the queue that never blocks the recorder, silence without espeak-ng, and the panel
speaking a whole trial, a cancel and a long press.

The espeak-ng tests need Debian's ``espeak-ng`` (scripts/test.sh installs it); without it
they skip and say why.
"""

from __future__ import annotations

import logging
import re
import shutil
import string
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from device.config import PanelConfig, TrialConfig, config_from_dict
from device.panel import PROMPTS, Panel, PanelState, Voice, make_voice
from device.trial.guidance import MESSAGES, NOT_STARTED
from device.trial.recorder import Cue, RecorderState, RecorderTiming, TrialRecorder
from device.vision.types import HandObservation

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed (apt install espeak-ng)")
BUTTON, LED, BUZZER = 17, 27, 22
FAST = PanelConfig(
    button_pin=BUTTON, led_pin=LED, buzzer_pin=BUZZER, bounce_s=0, long_press_s=0.2, blink_unit_s=0.001,
)  # fmt: skip


def wav_info(path: Path) -> tuple[int, int, int, float, float]:
    """(channels, sample width, rate, seconds, RMS in [0, 1]) of a WAV file."""
    with wave.open(str(path), "rb") as w:
        frames = w.readframes(w.getnframes())
        pcm = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768
        return w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes() / w.getframerate(), float(
            np.sqrt(np.mean(pcm**2)) if pcm.size else 0.0
        )


def words(text: str) -> int:
    return len(re.findall(r"\w+", text))


# ----------------------------------------------------------------------------- the words


def test_every_language_has_every_prompt_with_the_same_blanks() -> None:
    en, de = PROMPTS["en"], PROMPTS["de"]
    assert set(en) == set(de)
    for key in en:
        blanks = {f for _, f, _, _ in string.Formatter().parse(en[key]) if f}
        assert blanks == {f for _, f, _, _ in string.Formatter().parse(de[key]) if f}, key
    # every guidance code and every reason the recorder gives before a score has words
    for code in MESSAGES:
        assert f"guide.{code}" in en
    for code in [*NOT_STARTED, "hand_lost", "hand_missing", "stopped_early", "camera_lost", "camera_stalled"]:
        assert f"reason.{code}" in en
    voice = Voice("de", exe="")  # never started: text only
    assert voice.text("guide.wrong_side", seen="linke", side="rechte") == (
        "Das ist die linke Hand. Bitte zeigen Sie die rechte Hand."
    )
    assert voice.text("not_scorable", why="") == (
        "Dieser Versuch konnte nicht bewertet werden. Bitte versuchen Sie es noch einmal."
    )
    with pytest.raises(ValueError, match="voice language"):
        Voice("fr", exe="")


def test_voice_is_off_by_default_and_configured_in_the_panel_section() -> None:
    assert make_voice(PanelConfig()) is None
    cfg = config_from_dict({"panel": {"voice": True, "voice_language": "de", "voice_speed": 120}})
    assert (cfg.panel.voice, cfg.panel.voice_language, cfg.panel.voice_speed) == (True, "de", 120)
    with pytest.raises(ValueError, match=r"panel\.voice_language"):
        config_from_dict({"panel": {"voice_language": "fr"}})
    with pytest.raises(ValueError, match=r"panel\.voice_speed"):
        config_from_dict({"panel": {"voice_speed": 20}})


def test_without_espeak_ng_one_warning_and_silence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    with caplog.at_level(logging.WARNING, logger="device.panel.voice"):
        voice = make_voice(PanelConfig(voice=True))
        assert voice is not None and not voice.available
        voice.say("close")
        voice.say("open", interrupt=True)
        assert voice.wait_idle(1) and voice.spoken == [] and "silent" in repr(voice)
        voice.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "espeak-ng is not installed" in warnings[0].getMessage()


def test_a_failing_espeak_is_logged_once_and_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    false = shutil.which("false")
    assert false is not None
    with caplog.at_level(logging.WARNING, logger="device.panel.voice"), Voice("en", exe=false) as voice:
        for key in ("close", "open"):
            voice.say(key)
            assert voice.wait_idle(30)
    assert [p.key for p in voice.spoken] == ["close", "open"]
    assert len([r for r in caplog.records if "not spoken" in r.getMessage()]) == 1


def test_say_never_waits_for_the_speaker_and_newer_prompts_replace_older(tmp_path: Path) -> None:
    """A speaker that takes its time (a stand-in that sleeps): ``say`` returns while it
    speaks, a second and third prompt keep only the newest, an urgent one cuts it off."""
    slow = tmp_path / "slow-espeak"
    slow.write_text("#!/bin/sh\nexec sleep 60\n")
    slow.chmod(0o755)
    with Voice("en", exe=str(slow)) as voice:
        voice.say("countdown")
        assert _wait(lambda: len(voice.spoken) == 1)  # speaking now (for 60 s)
        voice.say("guide.no_hand")  # returns at once
        voice.say("guide.hand_too_small")  # replaces the one not yet begun
        assert [p.key for p in voice.dropped] == ["guide.no_hand"]
        voice.say("close", interrupt=True)  # cuts "countdown" and replaces "too small"
        assert _wait(lambda: [p.key for p in voice.spoken] == ["countdown", "close"])
        assert [p.key for p in voice.dropped] == ["guide.no_hand", "guide.hand_too_small"]
        voice.say("countdown", interrupt=True)
        assert _wait(lambda: [p.key for p in voice.spoken][-1] == "countdown")
        voice.on_cue(Cue("guidance", "no_hand", "", 0.0, None))  # cuts the countdown's words
        assert _wait(lambda: [p.key for p in voice.spoken][-1] == "guide.no_hand")
    # a prompt that waited too long is not said any more
    with Voice("en", exe=str(slow), stale_s=0.0, clock=iter(range(100)).__next__) as voice:
        voice.say("open")
        assert voice.wait_idle(30) and voice.spoken == [] and [p.key for p in voice.dropped] == ["open"]


def _wait(cond: object, timeout: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


# ----------------------------------------------------------------------------- real audio


@needs_espeak
@pytest.mark.parametrize("language", ["en", "de"])
def test_prompts_render_to_valid_audio_of_plausible_length(language: str, tmp_path: Path) -> None:
    voice = Voice(language, speed=150)
    try:
        lengths = {}
        for key in ("close", "countdown", "not_scorable"):
            text = voice.text(key, why=PROMPTS[language]["reason.hand_lost"])
            path = voice.render(key, tmp_path / f"{key}.wav", why=PROMPTS[language]["reason.hand_lost"])
            channels, width, rate, seconds, rms = wav_info(path)
            assert (channels, width) == (1, 2) and rate >= 16000
            # 150 words per minute is 0.4 s a word; allow pauses and short words
            assert 0.15 * words(text) <= seconds <= 1.0 * words(text), (key, seconds, text)
            assert rms > 0.01  # speech, not silence
            lengths[key] = seconds
        assert max(lengths["close"], lengths["countdown"]) < lengths["not_scorable"]  # more words, longer
        slower = Voice(language, speed=90, exe=voice.exe)
        _, _, _, slow_s, _ = wav_info(slower.render("close", tmp_path / "slow.wav"))
        assert slow_s > lengths["close"]  # voice_speed is honoured
    finally:
        voice.close()


# ----------------------------------------------------------------------------- through the panel


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    try:
        yield factory
    finally:
        factory.reset()
        factory.close()


def _hand(t: float, present: bool = True) -> HandObservation:
    if not present:
        return HandObservation(0, t, (640, 480), False)
    rng = np.random.default_rng(3)
    lm = np.zeros((21, 3), np.float32)
    lm[:, :2] = rng.uniform(220, 420, size=(21, 2))
    return HandObservation(0, t, (640, 480), True, 0.95, "Left", 0.95, lm)


class Score:
    score = 2


@needs_espeak
def test_the_panel_speaks_a_trial_in_german_to_wav_files(mock_factory: MockFactory, tmp_path: Path) -> None:
    """Button → countdown with no hand (guidance) → the hand arrives → close → open → result,
    each prompt written by the real espeak-ng to a WAV file."""
    now = [0.0]
    cfg = TrialConfig(duration_s=6.0)
    rec = TrialRecorder(
        lambda trial: Score(), trial_config=cfg, timing=RecorderTiming.from_config(cfg),
        submit=lambda fn: fn(), clock=lambda: now[0],
    )  # fmt: skip
    voice = Voice("de", wav_dir=tmp_path)
    panel = Panel(FAST, pin_factory=mock_factory, on_press=rec.press, repeat=False, voice=voice)
    rec.add_listener(panel.on_recorder_change)
    rec.add_cue_listener(panel.on_cue)

    def feed(seconds: float, present: bool = True) -> None:
        for _ in range(round(seconds * 30)):
            now[0] += 1 / 30
            rec.on_observation(_hand(now[0], present))
            assert voice.wait_idle(30)  # one prompt at a time, so the test hears each

    try:
        assert voice.wait_idle(30)
        button = mock_factory.pin(BUTTON)
        button.drive_low()
        button.drive_high()
        assert voice.wait_idle(30)
        feed(1.0, present=False)
        feed(3.4)  # the window sees the hand after a few frames, then counts 3 s
        assert rec.state is RecorderState.RECORDING
        feed(6.0)
        assert rec.state is RecorderState.RESULT
        assert voice.wait_idle(30)
    finally:
        panel.close()
        rec.close()
    said = [p.key for p in voice.spoken]
    assert said == ["welcome", "countdown", "guide.no_hand", "guide.ready", "close", "open", "result.2"]
    assert [p.key for p in voice.dropped] == ["scoring"]  # the result came at once: only it is said
    assert voice.spoken[-1].text == "Fertig. Die Hand hat sich ganz geschlossen."
    assert [w.name for w in voice.wavs] == [f"{i + 1:04d}-{k}.wav" for i, k in enumerate(said)]
    for wav in voice.wavs:
        channels, _, _, seconds, rms = wav_info(wav)
        assert channels == 1 and seconds > 0.3 and rms > 0.01


def test_a_second_press_cancels_with_its_own_led_beeps_and_words_and_the_long_press_is_explained(
    mock_factory: MockFactory, tmp_path: Path
) -> None:
    """Recorded prompts with a stand-in speaker that exits at once (the words, not audio)."""
    true = shutil.which("true")
    assert true is not None
    now = [0.0]
    rec = TrialRecorder(
        lambda trial: Score(), timing=RecorderTiming(), submit=lambda fn: fn(), clock=lambda: now[0]
    )
    voice = Voice("en", exe=true)
    long_presses: list[int] = []

    def long_press() -> None:
        rec.cancel("cancelled with a long press")
        long_presses.append(1)
        panel.show(PanelState.SAFE)

    panel = Panel(
        FAST, pin_factory=mock_factory, on_press=rec.press, on_long_press=long_press,
        repeat=False, voice=voice,
    )  # fmt: skip
    rec.add_listener(panel.on_recorder_change)
    button, buzzer = mock_factory.pin(BUTTON), mock_factory.pin(BUZZER)
    try:
        assert voice.wait_idle(30)
        assert voice.spoken[0].text == (
            "Flexscore is ready. Press the button to start a test. "
            "Hold the button down for 0.2 seconds to stop, before switching off."
        )
        button.drive_low()
        button.drive_high()  # press: countdown
        assert voice.wait_idle(30)
        buzzer.clear_states()
        button.drive_low()
        button.drive_high()  # second press during the countdown: cancelled
        assert rec.state is RecorderState.CANCELLED
        assert panel.wait_shown(5) and panel.history[-1] == (PanelState.CANCELLED, None)
        assert voice.wait_idle(30) and voice.spoken[-1].key == "cancelled"
        assert _wait(lambda: sum(1 for s in buzzer.states if s.state) == 3)  # three beeps
        button.drive_low()
        assert _wait(lambda: long_presses == [1])  # held for long_press_s
        button.drive_high()
        assert voice.wait_idle(30) and voice.spoken[-1].key == "safe"
        assert "switch the kit off now" in voice.spoken[-1].text
        assert panel.history[-1] == (PanelState.SAFE, None)
    finally:
        panel.close()
        rec.close()
    assert voice.spoken[:3] and [p.key for p in voice.spoken] == ["welcome", "countdown", "cancelled", "safe"]
