"""The trial store: SQLite (WAL) with numbered migrations; all SQL lives in this package."""

from __future__ import annotations

from device.store.blobs import decode_trial, encode_trial
from device.store.migrations import SCHEMA_VERSION
from device.store.records import (
    TRIAL_STATUSES,
    AuditEntry,
    Label,
    NewScore,
    OutboxMessage,
    Patient,
    QueuedMessage,
    SaveEvent,
    ScoreRecord,
    TrialRecord,
)
from device.store.sink import RecorderSink, write_outcome
from device.store.store import STOPPED_REASON, SaveHook, Store, StoreCorruptError

__all__ = [
    "SCHEMA_VERSION",
    "STOPPED_REASON",
    "TRIAL_STATUSES",
    "AuditEntry",
    "Label",
    "NewScore",
    "OutboxMessage",
    "Patient",
    "QueuedMessage",
    "RecorderSink",
    "SaveEvent",
    "SaveHook",
    "ScoreRecord",
    "Store",
    "StoreCorruptError",
    "TrialRecord",
    "decode_trial",
    "encode_trial",
    "write_outcome",
]
