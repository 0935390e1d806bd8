"""Write the recorder's trials to the store: the one recorder listener that persists trials.

``RecorderSink(store, outcome_fn)`` follows :class:`~device.trial.recorder.StateChange`\\ s:
``recording`` creates the trial row, ``scoring`` marks it, and an outcome (``result``,
``rejected``, ``cancelled``, ``error``) is written with its landmarks, quality, reasons and
score in one transaction (:func:`write_outcome`). A trial cancelled during the countdown
never gets a row. ``outcome_fn(change)`` says what to store for an outcome state (None for
any other state): :func:`device.appliance.session.trial_outcome`, in the shape the result
page reads. After an outcome is written, ``on_stored(trial_id, change, status)`` is called
(the appliance's "trial stored" event).

Store errors are logged, kept in :attr:`last_error` (the page shows it) and passed to
``on_error(change, exc)``; they never propagate into the recorder. When an outcome cannot
be written, the row is marked ``error`` with the reason if that smaller write succeeds;
otherwise it stays open and :meth:`Store.reap_interrupted` marks it at the next stop or
start — a trial never appears scored unless its score and landmarks were stored with it.

It runs in the thread that caused the change (a few ms of SQLite per trial edge).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from device.errors import StoreError
from device.store.records import NewScore
from device.store.store import Store
from device.trial.recorder import StateChange, TrialInfo
from device.trial.types import Trial

log = logging.getLogger(__name__)


class Outcome(Protocol):
    """What :func:`write_outcome` stores (e.g. :class:`device.appliance.session.TrialOutcome`)."""

    @property
    def status(self) -> str: ...
    @property
    def trial(self) -> Trial | None: ...
    @property
    def quality(self) -> dict[str, Any] | None: ...
    @property
    def reasons(self) -> list[dict[str, str]]: ...
    @property
    def score(self) -> NewScore | None: ...
    @property
    def finished_at(self) -> datetime | None: ...


OutcomeFn = Callable[[StateChange], Outcome | None]
ErrorFn = Callable[[StateChange, StoreError], None]
StoredFn = Callable[[int, StateChange, str], None]


def begin_row(store: Store, info: TrialInfo, item: str, recording_of: int | None = None) -> int:
    """The trial row of recorder trial ``info`` for assessment ``item`` (status recording);
    ``recording_of``: the first row of the same recording, when it is scored for several items."""
    return store.begin_trial(
        side=info.side,
        patient_id=info.patient_id,
        origin=info.origin,
        started_at=info.recording_started_at or info.started_at,
        role=info.role,
        item=item,
        recording_of=recording_of,
    )


def write_outcome(store: Store, trial_id: int, outcome: Outcome) -> None:
    """Store one trial's outcome (status, landmarks, quality, reasons, score) atomically."""
    store.finish_trial(
        trial_id,
        outcome.status,
        trial=outcome.trial,
        quality=outcome.quality,
        reasons=outcome.reasons,
        score=outcome.score,
        finished_at=outcome.finished_at,
        profile=getattr(outcome, "profile", None),
    )


class RecorderSink:
    """Recorder listener that persists trials (see the module doc)."""

    def __init__(
        self,
        store: Store,
        outcome_fn: OutcomeFn,
        *,
        on_error: ErrorFn | None = None,
        on_stored: StoredFn | None = None,
        item_of: Callable[[TrialInfo], str] | None = None,
    ) -> None:
        self.store = store
        self.outcome_fn = outcome_fn
        self.on_error = on_error
        self.on_stored = on_stored
        self.item_of = item_of  # the assessment item of a new row (default: mass flexion)
        self.ids: dict[int, int] = {}  # recorder seq → store trial id
        self.last_error: StoreError | None = None

    def __call__(self, change: StateChange) -> None:
        info = change.info
        if info is None:
            return
        try:
            self._handle(change)
        except StoreError as exc:
            self.last_error = exc
            log.error("trial %d not stored: %s", info.seq, exc)
            if self.on_error is not None:
                self.on_error(change, exc)

    def _handle(self, change: StateChange) -> None:
        info = change.info
        assert info is not None
        state = str(change.new)
        if state == "recording":
            item = self.item_of(info) if self.item_of is not None else "mass_flexion"
            self.ids[info.seq] = begin_row(self.store, info, item)
            self.last_error = None
        elif state == "scoring" and info.seq in self.ids:
            self.store.set_status(self.ids[info.seq], "scoring")
        elif info.seq in self.ids:
            outcome = self.outcome_fn(change)
            if outcome is None:
                return
            trial_id = self.ids.pop(info.seq)
            try:
                write_outcome(self.store, trial_id, outcome)
            except StoreError as exc:
                self._mark_not_saved(trial_id, exc, outcome.finished_at)
                raise
            self.last_error = None
            if self.on_stored is not None:
                self.on_stored(trial_id, change, outcome.status)

    def _mark_not_saved(self, trial_id: int, exc: StoreError, finished_at: datetime | None) -> None:
        reason = {"code": "not_saved", "message": f"the result could not be saved: {exc}"}
        try:
            self.store.finish_trial(trial_id, "error", reasons=[reason], finished_at=finished_at)
        except StoreError as again:
            log.error("trial %d left open (marked interrupted at the next start): %s", trial_id, again)

    def store_id(self, seq: int) -> int | None:
        """The store id of a recorder trial still in progress."""
        return self.ids.get(seq)
