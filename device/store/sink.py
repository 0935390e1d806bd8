"""Write the recorder's trials to the store: a recorder listener (optional glue for the root).

``RecorderSink(store, to_score)`` follows :class:`~device.trial.recorder.StateChange`\\ s:
``recording`` creates the trial row, ``scoring`` marks it, and the outcome (``result``,
``rejected``, ``cancelled``, ``error``) is written with its landmarks, quality, reasons and
score in one transaction. A trial cancelled during the countdown never gets a row.
``to_score(result) -> NewScore`` maps the scorer's result (the scoring module's type) to
what the store keeps. Store errors are logged and kept in :attr:`last_error` (the web page
can show it); they never propagate into the recorder.

It runs in the thread that caused the change (a few ms of SQLite per trial edge).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from device.errors import StoreError
from device.store.records import NewScore
from device.store.store import Store
from device.trial.recorder import StateChange, TrialInfo

log = logging.getLogger(__name__)

OUTCOME_STATUS = {
    "result": "scored",
    "rejected": "rejected",
    "cancelled": "cancelled",
    "error": "error",
}


class RecorderSink:
    """Recorder listener that persists trials (see the module doc)."""

    def __init__(self, store: Store, to_score: Callable[[Any], NewScore]) -> None:
        self.store = store
        self.to_score = to_score
        self.ids: dict[int, int] = {}  # recorder seq → store trial id
        self.last_error: StoreError | None = None

    def __call__(self, change: StateChange) -> None:
        info = change.info
        if info is None:
            return
        try:
            self._handle(change.new.value, info)
        except StoreError as exc:
            self.last_error = exc
            log.error("trial %d not stored: %s", info.seq, exc)

    def _handle(self, state: str, info: TrialInfo) -> None:
        if state == "recording":
            self.ids[info.seq] = self.store.begin_trial(
                side=info.side,
                patient_id=info.patient_id,
                origin=info.origin,
                started_at=info.recording_started_at or info.started_at,
            )
        elif state == "scoring" and info.seq in self.ids:
            self.store.set_status(self.ids[info.seq], "scoring")
        elif state in OUTCOME_STATUS and info.seq in self.ids:
            trial_id = self.ids.pop(info.seq)
            score = self.to_score(info.result) if state == "result" else None
            self.store.finish_trial(
                trial_id,
                OUTCOME_STATUS[state],
                trial=info.trial,
                quality=info.quality.to_json() if info.quality is not None else None,
                reasons=[asdict(r) for r in info.reasons],
                score=score,
                finished_at=info.finished_at,
            )

    def store_id(self, seq: int) -> int | None:
        """The store id of a recorder trial still in progress."""
        return self.ids.get(seq)
