"""Plain records the store takes and returns (no SQL, no sqlite3 rows leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

TrialStatus = Literal["recording", "scoring", "scored", "rejected", "cancelled", "error", "interrupted"]
TRIAL_STATUSES: tuple[str, ...] = (
    "recording", "scoring", "scored", "rejected", "cancelled", "error", "interrupted",
)  # fmt: skip
OPEN_STATUSES: tuple[str, ...] = ("recording", "scoring")  # a crash leaves these behind
TrialRole = Literal["assessment", "reference"]
# "assessment": the affected hand, scored 0/1/2; "reference": the unaffected hand, recorded so
# the session's next assessments are scored relative to it (its range is the trial's profile).
TRIAL_ROLES: tuple[str, ...] = ("assessment", "reference")
SCORE_MODES: tuple[str, ...] = ("absolute", "reference")


@dataclass(frozen=True)
class Patient:
    id: int
    code: str  # pseudonymous code, never a name
    affected_side: str | None
    created_at: datetime


@dataclass(frozen=True)
class NewScore:
    """What the scorer concluded about one trial (input to the store).

    Attributes:
        final_score: the reported score 0/1/2.
        model_score / rule_score: what the RNN and the range-of-motion rule said, or None.
        probabilities: the RNN's (p0, p1, p2), or None.
        confidence: of the final score in [0, 1], or None.
        model_version / rule_version: e.g. the model file's sha256 prefix and rule name.
        review: True when a clinician should look at it.
        detail: any further JSON-serialisable facts (reasons, features summary).
        mode: "absolute" (against an ideal fist) or "reference" (against the unaffected
            hand); None for scores stored before modes existed (absolute).
        reference_trial_id: the reference trial the score was compared with (also kept
            when that reference was unusable and the absolute mode was used), or None.
    """

    final_score: int
    model_score: int | None = None
    rule_score: int | None = None
    probabilities: tuple[float, ...] | None = None
    confidence: float | None = None
    model_version: str | None = None
    rule_version: str | None = None
    review: bool = False
    detail: dict[str, Any] | None = None
    mode: str | None = None
    reference_trial_id: int | None = None


@dataclass(frozen=True)
class ScoreRecord(NewScore):
    id: int = 0
    trial_id: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True)
class TrialRecord:
    id: int
    patient_id: int | None
    side: str | None
    status: str
    origin: str | None
    started_at: datetime
    finished_at: datetime | None
    quality: dict[str, Any] | None
    reasons: list[dict[str, str]] = field(default_factory=list)
    score: ScoreRecord | None = None  # the latest score, if any
    has_landmarks: bool = False
    has_world: bool = False  # its stored landmarks include world landmarks (schema 3)
    role: str = "assessment"  # or "reference" (the unaffected hand)
    profile: dict[str, Any] | None = None  # a reference trial's measured range of motion
    item: str = "mass_flexion"  # the assessment item (device/items); schema 4
    recording_of: int | None = None  # the first trial of a recording scored for several items
    uuid: str | None = None  # names the trial beyond this device (fleet messages; schema 5)

    @property
    def is_reference(self) -> bool:
        return self.role == "reference"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (what /api/status's ``last_trial`` and /api/trials show)."""
        return {
            "id": self.id,
            "patient_id": self.patient_id,
            "side": self.side,
            "role": self.role,
            "item": self.item,
            "recording_of": self.recording_of,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "score": self.score.final_score if self.score else None,
            "review": self.score.review if self.score else None,
            "reasons": self.reasons,
        }


@dataclass(frozen=True)
class Label:
    id: int
    trial_id: int
    clinician: str
    score: int | None  # None: the clinician judged it not scorable
    note: str | None
    created_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any] | None


OUTBOX_KINDS: tuple[str, ...] = ("trial", "status")  # status messages may be dropped, trials never


@dataclass(frozen=True)
class OutboxMessage:
    """One MQTT message to publish (device/fleet/), kept in the store's outbox until the
    broker acknowledges it.

    Attributes:
        message_id: stays the same however often the message is sent (consumers drop
            duplicates by it).
        kind: "trial" (never dropped) or "status" (the oldest are dropped when the outbox
            is full).
        topic: below ``<prefix>/<unit_id>/``, e.g. "trials".
        payload: the message's JSON text.
        retain: the broker keeps the last one for new subscribers.
    """

    message_id: str
    kind: str
    topic: str
    payload: str
    retain: bool = False


@dataclass(frozen=True)
class QueuedMessage(OutboxMessage):
    id: int = 0  # the sending order
    created_at: datetime | None = None


@dataclass(frozen=True)
class SaveEvent:
    """What a store write just saved, for :meth:`Store.add_save_hook` hooks: ``"trial"``
    (a trial reached a final status: scored, rejected, cancelled, error, interrupted) or
    ``"label"`` (a clinician label, ``label_id``, was added to trial ``trial_id``)."""

    kind: str
    trial_id: int
    label_id: int | None = None
