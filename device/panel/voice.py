"""Spoken prompts (issue 18): the kit says what happens and what to do, through Debian's espeak-ng.

Optional and **off by default** (``[panel] voice = false``); ``voice_language`` "en" or "de",
``voice_speed`` in words per minute. :func:`make_voice` builds it from the config; the
:class:`~device.panel.panel.Panel` owns it and forwards the recorder's state changes
(:meth:`Voice.on_change`), its cues (:meth:`Voice.on_cue`: guidance, "close", "open") and
the long press ("safe").

Never in the recorder's way: :meth:`Voice.say` only puts the prompt in a one-slot mailbox
and returns; a worker thread ("voice") runs ``espeak-ng`` for it. A newer prompt replaces one
not yet spoken (so a quick sequence says only its latest step), a prompt that waited longer
than ``stale_s`` is dropped, and an urgent one (``interrupt=True``: "close your hand now",
"cancelled") cuts off the sentence being spoken. Without ``espeak-ng`` on the PATH the
voice logs one warning and stays silent; a failing ``espeak-ng`` (no sound card) is logged
once and never raised.

Output: espeak-ng's own audio output (ALSA/PulseAudio through its pcaudiolib), i.e.
``espeak-ng -v de -s 150 TEXT``; with ``wav_dir`` every prompt is written to a numbered WAV
file there instead (``-w``), which is how the tests hear it. :meth:`Voice.render` writes one
prompt to a WAV file.

All the spoken words live in :data:`PROMPTS`, one dict per language with the same keys;
guidance and reason keys use the codes of device/trial/guidance.py and quality.py.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.config import PanelConfig

log = logging.getLogger(__name__)

STALE_S = 3.0  # a prompt not begun within this is dropped (the moment has passed)
REPEAT_S = 4.0  # the same guidance is not repeated sooner than this
ESPEAK = "espeak-ng"
ESPEAK_VOICES = {"en": "en", "de": "de"}
COUNTDOWN_KEYS = frozenset({"countdown", "countdown_reference"})

# key → words, one dict per language (same keys in each; tests check that).
PROMPTS: dict[str, dict[str, str]] = {
    "en": {
        "welcome": "Flexscore is ready. Press the button to start a test. "
        "Hold the button down for {seconds} seconds to stop, before switching off.",
        "countdown": "Get ready. Open hand, facing the camera.",
        "countdown_reference": "Get ready. This time, hold your other hand open in front of the camera.",
        "guide.no_hand": "I cannot see a hand. Hold your open hand in front of the camera.",
        "guide.wrong_side": "That is the {seen} hand. Please show the {side} hand.",
        "guide.hand_cut_by_edge": "Part of your hand is outside the picture. Move it to the middle.",
        "guide.hand_too_small": "Your hand is too far away. Move it closer to the camera.",
        "guide.fingers_hidden": "Your hand is turned sideways. Turn your palm towards the camera.",
        "guide.ready": "Good. Keep your hand open and still.",
        "close": "Close your hand now, as far as you can.",
        "open": "Now open it again.",
        "scoring": "Thank you.",
        "result.0": "Done. The fingers did not close this time.",
        "result.1": "Done. Your hand closed part of the way.",
        "result.2": "Done. Your hand closed fully.",
        "result.reference": "Done. Your other hand is recorded. Now we test the affected hand.",
        "result.other": "Done. Your clinician will look at the result.",
        "not_scorable": "This try could not be scored. {why} Please try again.",
        "not_started": "The recording did not start. {why} Press the button to try again.",
        "cancelled": "Cancelled.",
        "error": "Something went wrong. Please try again.",
        "safe": "Stopped. You can switch the kit off now. Press the button once to go on.",
        "side.left": "left",
        "side.right": "right",
        "side.other": "other",
        "reason.no_hand": "No hand was seen.",
        "reason.hand_lost": "Your hand left the picture.",
        "reason.hand_missing": "Your hand was often out of view.",
        "reason.wrong_side": "The wrong hand was in view.",
        "reason.hand_too_small": "Your hand was too far from the camera.",
        "reason.hand_cut_by_edge": "Part of your hand was outside the picture.",
        "reason.fingers_hidden": "Your hand was turned sideways, so the fingers were hidden.",
        "reason.stopped_early": "The recording was stopped too early.",
        "reason.camera_lost": "The camera stopped working.",
        "reason.camera_stalled": "The camera stopped working.",
        "reason.disk_full": "The kit's memory is full. Please tell your clinician.",
        "reason.other": "",
    },
    "de": {
        "welcome": "Flexscore ist bereit. Drücken Sie die Taste, um einen Test zu beginnen. "
        "Halten Sie die Taste {seconds} Sekunden lang gedrückt, um vor dem Ausschalten anzuhalten.",
        "countdown": "Bereit machen. Offene Hand zur Kamera.",
        "countdown_reference": "Machen Sie sich bereit."
        " Halten Sie diesmal die andere Hand offen vor die Kamera.",
        "guide.no_hand": "Ich sehe keine Hand. Halten Sie die offene Hand vor die Kamera.",
        "guide.wrong_side": "Das ist die {seen} Hand. Bitte zeigen Sie die {side} Hand.",
        "guide.hand_cut_by_edge": "Ein Teil der Hand ist außerhalb des Bildes. Bewegen Sie sie in die Mitte.",
        "guide.hand_too_small": "Die Hand ist zu weit weg. Kommen Sie näher an die Kamera.",
        "guide.fingers_hidden": "Die Hand ist seitlich gedreht. Drehen Sie die Handfläche zur Kamera.",
        "guide.ready": "Gut. Halten Sie die Hand offen und ruhig.",
        "close": "Schließen Sie jetzt die Hand, so weit Sie können.",
        "open": "Und jetzt wieder öffnen.",
        "scoring": "Danke.",
        "result.0": "Fertig. Die Finger haben sich diesmal nicht geschlossen.",
        "result.1": "Fertig. Die Hand hat sich teilweise geschlossen.",
        "result.2": "Fertig. Die Hand hat sich ganz geschlossen.",
        "result.reference": "Fertig. Die andere Hand ist aufgenommen. Jetzt testen wir die betroffene Hand.",
        "result.other": "Fertig. Ihre Therapeutin oder Ihr Therapeut sieht sich das Ergebnis an.",
        "not_scorable": "Dieser Versuch konnte nicht bewertet werden."
        " {why} Bitte versuchen Sie es noch einmal.",
        "not_started": "Die Aufnahme hat nicht begonnen."
        " {why} Drücken Sie die Taste für einen neuen Versuch.",
        "cancelled": "Abgebrochen.",
        "error": "Etwas ist schiefgegangen. Bitte versuchen Sie es noch einmal.",
        "safe": "Angehalten. Sie können das Gerät jetzt ausschalten."
        " Drücken Sie die Taste einmal, um weiterzumachen.",
        "side.left": "linke",
        "side.right": "rechte",
        "side.other": "andere",
        "reason.no_hand": "Es war keine Hand zu sehen.",
        "reason.hand_lost": "Die Hand hat das Bild verlassen.",
        "reason.hand_missing": "Die Hand war oft nicht zu sehen.",
        "reason.wrong_side": "Es war die falsche Hand zu sehen.",
        "reason.hand_too_small": "Die Hand war zu weit von der Kamera entfernt.",
        "reason.hand_cut_by_edge": "Ein Teil der Hand war außerhalb des Bildes.",
        "reason.fingers_hidden": "Die Hand war seitlich gedreht, die Finger waren verdeckt.",
        "reason.stopped_early": "Die Aufnahme wurde zu früh beendet.",
        "reason.camera_lost": "Die Kamera hat nicht mehr funktioniert.",
        "reason.camera_stalled": "Die Kamera hat nicht mehr funktioniert.",
        "reason.disk_full": "Der Speicher des Geräts ist voll."
        " Bitte sagen Sie es Ihrer Therapeutin oder Ihrem Therapeuten.",
        "reason.other": "",
    },
}


@dataclass(frozen=True)
class Prompt:
    key: str
    text: str
    at: float  # time.monotonic() when asked for


def espeak_command(exe: str, language: str, speed: int, text: str, wav: Path | None = None) -> list[str]:
    """The espeak-ng command line for ``text`` (to the speaker, or to ``wav``)."""
    cmd = [exe, "-v", ESPEAK_VOICES[language], "-s", str(speed)]
    if wav is not None:
        cmd += ["-w", str(wav)]
    return [*cmd, text]


class Voice:
    """See the module doc."""

    def __init__(
        self,
        language: str = "en",
        *,
        speed: int = 150,
        exe: str | None = None,
        wav_dir: str | Path | None = None,
        stale_s: float = STALE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if language not in PROMPTS:
            raise ValueError(f"voice language must be one of {', '.join(PROMPTS)}, not {language!r}")
        self.language = language
        self.speed = speed
        self.words = PROMPTS[language]
        self.exe = exe if exe is not None else shutil.which(ESPEAK)
        self.wav_dir = Path(wav_dir) if wav_dir is not None else None
        self.stale_s = stale_s
        self._clock = clock
        self.spoken: list[Prompt] = []  # what was said (started), in order
        self.dropped: list[Prompt] = []  # replaced by a newer prompt, or stale
        self.wavs: list[Path] = []  # with wav_dir: the files written
        self._cond = threading.Condition()
        self._pending: Prompt | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._speaking: Prompt | None = None
        self._busy = False
        self._closed = False
        self._warned = False
        self._last_guide: tuple[str, float] | None = None  # (key, when) of the last guidance said
        self._guide_problem = False  # the last guidance said was a problem (not "ready")
        self._thread: threading.Thread | None = None
        if self.exe is None:
            log.warning(
                "voice prompts are on ([panel] voice = true) but %s is not installed "
                "(apt install espeak-ng): the kit stays silent",
                ESPEAK,
            )
            return
        self._thread = threading.Thread(target=self._run, name="voice", daemon=True)
        self._thread.start()

    @property
    def available(self) -> bool:
        return self.exe is not None

    # -- what to say ---------------------------------------------------------------------
    def text(self, key: str, **values: Any) -> str:
        """The words of ``key`` in this language, filled in."""
        return self.words[key].format(**values).replace("  ", " ").strip()

    def say(self, key: str, *, interrupt: bool | frozenset[str] = False, **values: Any) -> None:
        """Queue ``key`` (replacing a prompt not yet begun); never blocks, never raises.
        ``interrupt``: cut off the prompt being spoken (True), or only if it is one of these
        keys."""
        if self._closed or not self.available:
            return
        prompt = Prompt(key, self.text(key, **values), self._clock())
        with self._cond:
            if self._pending is not None:
                self.dropped.append(self._pending)
            self._pending = prompt
            now = self._speaking
            cut = interrupt is True or (
                isinstance(interrupt, frozenset) and now is not None and now.key in interrupt
            )
            if cut and self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()  # a signal: returns at once
            self._cond.notify_all()

    def on_change(self, change: Any) -> None:
        """Recorder listener (via the panel): speak the state changes."""
        new = str(getattr(change.new, "value", change.new))
        info = getattr(change, "info", None)
        if new == "countdown":
            self._last_guide, self._guide_problem = None, False
            ref = bool(info is not None and getattr(info, "is_reference", False))
            self.say("countdown_reference" if ref else "countdown")
        elif new == "scoring":
            self.say("scoring")
        elif new == "result":
            self.say(self._result_key(info))
        elif new == "rejected":
            reasons = getattr(info, "reasons", ()) or ()
            code = reasons[0].code if reasons else "other"
            why = self.words.get(f"reason.{code}", self.words["reason.other"])
            started = info is not None and getattr(info, "recording_started_at", None) is not None
            self.say("not_scorable" if started else "not_started", interrupt=True, why=why)
        elif new == "cancelled":
            self.say("cancelled", interrupt=True)
        elif new == "error":
            self.say("error", interrupt=True)

    def _result_key(self, info: Any) -> str:
        from device.panel.panel import result_score

        if info is not None and getattr(info, "is_reference", False):
            return "result.reference"
        score = result_score(getattr(info, "result", None))
        return f"result.{score}" if score in (0, 1, 2) else "result.other"

    def on_cue(self, cue: Any) -> None:
        """Recorder cue listener (via the panel): "close", "open" and the guidance."""
        if cue.kind == "phase" and cue.code in ("close", "open"):
            self.say(cue.code, interrupt=True)
            return
        if cue.kind != "guidance":
            return
        now = self._clock()
        if cue.code == "ready":
            if self._guide_problem:  # only after something had to be fixed
                self._guide_problem = False
                self.say("guide.ready")
            return
        key = f"guide.{cue.code}"
        if key not in self.words:
            return
        last = self._last_guide
        if last is not None and last[0] == key and now - last[1] < REPEAT_S:
            return
        self._last_guide, self._guide_problem = (key, now), True
        seen = getattr(getattr(cue, "guidance", None), "seen_side", None)
        other = {"left": "right", "right": "left"}.get(seen or "", "other")
        self.say(
            key,
            interrupt=COUNTDOWN_KEYS,  # the guidance says what to do instead: no need to wait
            seen=self.words[f"side.{seen or 'other'}"],
            side=self.words[f"side.{other}"],
        )

    # -- speaking ------------------------------------------------------------------------
    def render(self, key: str, path: str | Path, **values: Any) -> Path:
        """Write prompt ``key`` to the WAV file ``path`` (synchronously; for tests and checks)."""
        if self.exe is None:
            raise FileNotFoundError(f"{ESPEAK} is not installed")
        out = Path(path)
        cmd = espeak_command(self.exe, self.language, self.speed, self.text(key, **values), out)
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        return out

    def _run(self) -> None:
        n = 0
        while True:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                prompt, self._pending = self._pending, None
                assert prompt is not None
                if self._clock() - prompt.at > self.stale_s:
                    self.dropped.append(prompt)
                    continue
                self._busy = True
                n += 1
                wav = None
                if self.wav_dir is not None:
                    wav = self.wav_dir / f"{n:04d}-{prompt.key}.wav"
                assert self.exe is not None
                cmd = espeak_command(self.exe, self.language, self.speed, prompt.text, wav)
                try:
                    self._proc = subprocess.Popen(
                        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                    )
                except OSError as exc:
                    self._fault(f"cannot run {ESPEAK}: {exc}")
                    continue
                self.spoken.append(prompt)
                self._speaking = prompt
                proc = self._proc
            _, err = proc.communicate()
            with self._cond:
                self._proc, self._speaking = None, None
                if proc.returncode == 0 and wav is not None:
                    self.wavs.append(wav)
                elif proc.returncode > 0:
                    detail = err.decode(errors="replace").strip()
                    self._fault(f"{ESPEAK} failed ({proc.returncode}): {detail}")

    def _fault(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("voice prompt not spoken: %s (further failures are not logged)", message)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every queued prompt was spoken or dropped (tests); True on success."""
        if self._thread is None:
            return True
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout)

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Stop speaking and end the thread. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def __enter__(self) -> Voice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("silent" if not self.available else "on")
        return f"<Voice {self.language} {state}>"


def make_voice(cfg: PanelConfig, **kwargs: Any) -> Voice | None:
    """The voice of ``[panel]``: None when ``voice = false`` (the default)."""
    if not cfg.voice:
        return None
    return Voice(cfg.voice_language, speed=cfg.voice_speed, **kwargs)
