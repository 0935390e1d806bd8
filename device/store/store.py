"""The trial store: one SQLite file in WAL mode; every SQL statement of Flexscore lives here.

* **One writer.** A :class:`Store` owns one connection guarded by a lock; every method takes
  the lock, so threads (tracker, scoring, web) may share one store. WAL lets other processes
  (an export, ``sqlite3`` for a maintainer) read while it writes.
* **Transactional.** Each public write is one ``BEGIN IMMEDIATE … COMMIT``; on any error it
  rolls back, so a trial is never half-written (e.g. :meth:`Store.finish_trial` writes the
  status, landmarks and score together or not at all).
* **Migrations.** ``schema_version`` records applied migrations
  (:mod:`device.store.migrations`); opening a store applies the missing ones, and refuses a
  database written by a newer version.
* **Errors.** Every sqlite3 error becomes a :class:`StoreError` that says what failed;
  a full disk says so plainly.
* **Outbox.** Messages for the fleet (device/fleet/) are written to the ``outbox`` table in
  the same transaction as what they report: :meth:`Store.add_save_hook` registers a hook
  that :meth:`Store.finish_trial`, :meth:`Store.reap_interrupted` and :meth:`Store.add_label`
  call inside their transaction with a :class:`SaveEvent`; the messages it returns are
  stored with the trial or label, or (the hook failing) neither is. The outbox is bounded
  (``outbox_limit``): the oldest status messages go first, trial messages never.
* **Privacy.** Patients are a pseudonymous ``code`` and an affected side, nothing else; the
  log never shows codes or labels.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from device.errors import StoreError
from device.store.blobs import FORMAT, decode_trial, encode_trial
from device.store.migrations import MIGRATIONS, SCHEMA_VERSION
from device.store.records import (
    OPEN_STATUSES,
    OUTBOX_KINDS,
    SCORE_MODES,
    TRIAL_ROLES,
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
from device.trial.types import Trial

log = logging.getLogger(__name__)

PATIENT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
ITEM_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
DISK_FULL = "database or disk is full"
INTERRUPTED_REASON = {
    "code": "interrupted",
    "message": "the appliance crashed or lost power during this trial",
}
STOPPED_REASON = {
    "code": "interrupted",
    "message": "the appliance was stopped during this trial",
}
CORRUPT_MARKERS = ("file is not a database", "malformed", "corrupt")


SaveHook = Callable[["Store", SaveEvent], Iterable[OutboxMessage]]


class StoreCorruptError(StoreError):
    """The database file is damaged (not SQLite, or its integrity check fails)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds")


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def _unjson(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Store:
    """Repository over one SQLite file (see the module doc). Opens on construction."""

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_s: float = 5.0,
        clock: Callable[[], datetime] = _utcnow,
        check: bool = True,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._save_hooks: list[SaveHook] = []
        # most messages the outbox keeps: beyond, the oldest status messages are dropped
        # (trial messages never); None: unbounded
        self.outbox_limit: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout_s,
                isolation_level=None,  # autocommit; transactions are explicit
                check_same_thread=False,  # guarded by self._lock
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the trial store {self.path}: {exc}") from exc
        self._conn = conn
        try:
            conn.row_factory = sqlite3.Row
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"trial store {self.path}: WAL mode unavailable (got {mode})")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=FULL")  # a pulled plug must not lose a result
            if check:
                self._quick_check()
            self._migrate()
        except sqlite3.Error as exc:
            self.close()
            raise self._error("cannot open", exc) from exc
        except BaseException:
            self.close()
            raise
        log.info("trial store %s open (schema %d)", self.path, SCHEMA_VERSION)

    # -- plumbing ------------------------------------------------------------------------
    def _error(self, what: str, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if any(marker in text for marker in CORRUPT_MARKERS):
            return StoreCorruptError(
                f"the trial store {self.path} is damaged ({what}: {text}); keep the file for "
                f"recovery (sqlite3 {self.path.name} .recover) and start with a new one"
            )
        if DISK_FULL in text:
            return StoreError(
                f"the disk holding the trial store {self.path} is full, so nothing was saved "
                f"({what}); free some space and try again"
            )
        if "locked" in text:
            return StoreError(f"trial store {self.path} is locked by another writer ({what})")
        return StoreError(f"trial store {self.path}: {what} failed: {text}")

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"trial store {self.path} is closed")
        return self._conn

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One transaction under the writer lock; rolled back on any error."""
        with self._lock:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(what, exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):  # nothing left to roll back
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error(what, exc) from exc
                raise

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error("read", exc) from exc

    def _quick_check(self) -> None:
        """``PRAGMA quick_check`` on open: a damaged file is refused, never written to."""
        rows = self.conn.execute("PRAGMA quick_check").fetchall()
        problems = [
            line.strip()
            for r in rows
            for line in str(r[0]).splitlines()
            if line.strip() not in ("ok", "") and not line.startswith("***")
        ]
        if problems:
            raise StoreCorruptError(
                f"the trial store {self.path} is damaged (integrity check: {'; '.join(problems[:2])}); "
                f"keep the file for recovery (sqlite3 {self.path.name} .recover) and start with a new one"
            )

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check``: ``["ok"]`` for a sound database, else its findings."""
        return [str(r[0]) for r in self._read("PRAGMA integrity_check")]

    def _migrate(self) -> None:
        conn = self.conn
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"trial store {self.path} has schema {current}, newer than this flexscore "
                f"({SCHEMA_VERSION}); upgrade flexscore instead of downgrading the data"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self._write(f"migration {version}") as c:
                for statement in MIGRATIONS[version - 1]:
                    c.execute(statement)
                c.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, _ts(self._clock())),
                )
            log.info("trial store %s migrated to schema %d", self.path, version)

    def schema_version(self) -> int:
        return int(self._read("SELECT MAX(version) FROM schema_version")[0][0] or 0)

    # -- patients ------------------------------------------------------------------------
    def add_patient(self, code: str, affected_side: str | None = None) -> int:
        """A patient by pseudonymous ``code`` (letters, digits, ``_.-``; no spaces, so no
        names) and the affected side. Raises StoreError if the code exists."""
        if not PATIENT_CODE.match(code):
            raise StoreError(
                "a patient code is 1-32 letters, digits, '_', '.' or '-' (a pseudonym, never a name)"
            )
        if affected_side not in (None, "left", "right"):
            raise StoreError(f"affected side must be 'left' or 'right', got {affected_side!r}")
        with self._write("add patient") as c:
            if c.execute("SELECT 1 FROM patients WHERE code = ?", (code,)).fetchone():
                raise StoreError("a patient with this code exists already")
            cur = c.execute(
                "INSERT INTO patients (code, affected_side, created_at) VALUES (?, ?, ?)",
                (code, affected_side, _ts(self._clock())),
            )
            return int(cur.lastrowid or 0)

    def _patient(self, row: sqlite3.Row) -> Patient:
        created = _dt(row["created_at"])
        assert created is not None
        return Patient(row["id"], row["code"], row["affected_side"], created)

    def get_patient(self, patient_id: int) -> Patient | None:
        rows = self._read("SELECT * FROM patients WHERE id = ?", (patient_id,))
        return self._patient(rows[0]) if rows else None

    def find_patient(self, code: str) -> Patient | None:
        rows = self._read("SELECT * FROM patients WHERE code = ?", (code,))
        return self._patient(rows[0]) if rows else None

    def recent_patients(self, limit: int = 8) -> list[Patient]:
        """Patients by their newest trial (newest first; patients without trials last, newest
        created first): the page's picker of recent codes."""
        rows = self._read(
            "SELECT p.* FROM patients p LEFT JOIN trials t ON t.patient_id = p.id GROUP BY p.id "
            "ORDER BY MAX(t.started_at) IS NULL, MAX(t.started_at) DESC, p.created_at DESC, p.id DESC "
            "LIMIT ?",
            (limit,),
        )
        return [self._patient(r) for r in rows]

    def list_patients(self) -> list[Patient]:
        return [self._patient(r) for r in self._read("SELECT * FROM patients ORDER BY code")]

    # -- trials --------------------------------------------------------------------------
    def begin_trial(
        self,
        *,
        side: str | None = None,
        patient_id: int | None = None,
        origin: str | None = None,
        started_at: datetime | None = None,
        role: str = "assessment",
        item: str = "mass_flexion",
        recording_of: int | None = None,
    ) -> int:
        """A new trial in status ``recording``; returns its id. ``role`` "reference" marks a
        recording of the unaffected hand (``side`` is then that hand's side). ``item`` is the
        assessment item; ``recording_of`` the first trial of the same recording when one
        recording is scored for several items."""
        if role not in TRIAL_ROLES:
            raise StoreError(f"unknown trial role {role!r}; valid: {', '.join(TRIAL_ROLES)}")
        if not ITEM_KEY.fullmatch(item):
            raise StoreError(f"invalid assessment item key {item!r}")
        with self._write("begin trial") as c:
            cur = c.execute(
                "INSERT INTO trials (patient_id, side, status, origin, started_at, role, item, "
                "recording_of, uuid) VALUES (?, ?, 'recording', ?, ?, ?, ?, ?, ?)",
                (
                    patient_id,
                    side,
                    origin,
                    _ts(started_at or self._clock()),
                    role,
                    item,
                    recording_of,
                    str(uuid.uuid4()),
                ),
            )
            return int(cur.lastrowid or 0)

    def set_status(self, trial_id: int, status: str) -> None:
        """Move a trial to another status without finishing it (e.g. ``scoring``)."""
        self._check_status(status)
        with self._write("set trial status") as c:
            self._update_trial(c, trial_id, "status = ?", (status,))

    def finish_trial(
        self,
        trial_id: int,
        status: str,
        *,
        trial: Trial | None = None,
        quality: dict[str, Any] | None = None,
        reasons: list[dict[str, str]] | None = None,
        score: NewScore | None = None,
        finished_at: datetime | None = None,
        profile: dict[str, Any] | None = None,
    ) -> None:
        """Record a trial's outcome — status, landmarks, quality, reasons, score and (for a
        reference trial) its measured ``profile`` — in one transaction: all of it is stored,
        or (on any error) none of it."""
        self._check_status(status)
        if score is not None:
            self._check_score(score)
        blob = encode_trial(trial) if trial is not None else None
        with self._write("finish trial") as c:
            self._update_trial(
                c,
                trial_id,
                "status = ?, finished_at = ?, quality = COALESCE(?, quality), reasons = ?, "
                "profile = COALESCE(?, profile)",
                (
                    status,
                    _ts(finished_at or self._clock()),
                    _json(quality),
                    _json(list(reasons or [])),
                    _json(profile),
                ),
            )
            if blob is not None and trial is not None:
                c.execute(
                    "INSERT OR REPLACE INTO landmarks (trial_id, format, num_frames, data, world) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (trial_id, FORMAT, trial.num_frames, blob, int(trial.has_world)),
                )
            if score is not None:
                self._insert_score(c, trial_id, score)
            if status not in OPEN_STATUSES:
                self._saved(c, SaveEvent("trial", trial_id))

    def add_score(self, trial_id: int, score: NewScore) -> int:
        """Another score for a stored trial (e.g. re-scored by a newer model)."""
        self._check_score(score)
        with self._write("add score") as c:
            if not c.execute("SELECT 1 FROM trials WHERE id = ?", (trial_id,)).fetchone():
                raise StoreError(f"no trial {trial_id}")
            return self._insert_score(c, trial_id, score)

    def _insert_score(self, c: sqlite3.Connection, trial_id: int, s: NewScore) -> int:
        cur = c.execute(
            "INSERT INTO scores (trial_id, created_at, model_version, rule_version, "
            "probabilities, model_score, rule_score, final_score, confidence, review, detail, "
            "mode, reference_trial_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                trial_id,
                _ts(self._clock()),
                s.model_version,
                s.rule_version,
                _json(list(s.probabilities)) if s.probabilities is not None else None,
                s.model_score,
                s.rule_score,
                s.final_score,
                s.confidence,
                int(s.review),
                _json(s.detail),
                s.mode,
                s.reference_trial_id,
            ),
        )
        return int(cur.lastrowid or 0)

    def _check_score(self, s: NewScore) -> None:
        if s.mode is not None and s.mode not in SCORE_MODES:
            raise StoreError(f"unknown score mode {s.mode!r}; valid: {', '.join(SCORE_MODES)}")

    def _check_status(self, status: str) -> None:
        if status not in TRIAL_STATUSES:
            raise StoreError(f"unknown trial status {status!r}; valid: {', '.join(TRIAL_STATUSES)}")

    def _update_trial(
        self, c: sqlite3.Connection, trial_id: int, assignments: str, params: tuple[Any, ...]
    ) -> None:
        cur = c.execute(f"UPDATE trials SET {assignments} WHERE id = ?", (*params, trial_id))
        if cur.rowcount != 1:
            raise StoreError(f"no trial {trial_id}")

    def reap_interrupted(self, reason: dict[str, str] | None = None) -> int:
        """Mark trials a crash or a stop left in ``recording``/``scoring`` as ``interrupted``
        with ``reason`` (default: crashed or lost power); returns how many. Call it on
        start-up before serving (crash) and on shutdown (:data:`STOPPED_REASON`)."""
        now = _ts(self._clock())
        marks = ",".join("?" for _ in OPEN_STATUSES)
        with self._write("reap interrupted trials") as c:
            reaped = [
                r[0]
                for r in c.execute(f"SELECT id FROM trials WHERE status IN ({marks})", OPEN_STATUSES)
            ] if self._save_hooks else []
            cur = c.execute(
                f"UPDATE trials SET status = 'interrupted', finished_at = COALESCE(finished_at, ?),"
                f" reasons = ? WHERE status IN ({marks})",
                (now, _json([reason or INTERRUPTED_REASON]), *OPEN_STATUSES),
            )
            n = cur.rowcount
            if n:
                c.execute(
                    "INSERT INTO audit (at, actor, action, detail) VALUES (?, 'system', "
                    "'reap_interrupted', ?)",
                    (now, _json({"trials": n})),
                )
            for trial_id in reaped:
                self._saved(c, SaveEvent("trial", trial_id))
        if n:
            log.warning("marked %d unfinished trial(s) as interrupted", n)
        return n

    _TRIAL_SELECT = (
        "SELECT t.*, (SELECT COUNT(*) FROM landmarks l WHERE l.trial_id = t.id) AS has_lm, "
        "(SELECT MAX(l.world) FROM landmarks l WHERE l.trial_id = t.id) AS has_world, "
        "s.id AS s_id, s.created_at AS s_created_at, s.model_version, s.rule_version, "
        "s.probabilities, s.model_score, s.rule_score, s.final_score, s.confidence, s.review, "
        "s.detail, s.mode, s.reference_trial_id FROM trials t LEFT JOIN scores s ON s.id = "
        "(SELECT MAX(id) FROM scores WHERE trial_id = t.id)"
    )

    def _trial(self, row: sqlite3.Row) -> TrialRecord:
        score = None
        if row["s_id"] is not None:
            score = self._score_from(row, row["s_id"], row["id"], row["s_created_at"])
        started = _dt(row["started_at"])
        assert started is not None
        return TrialRecord(
            id=row["id"],
            patient_id=row["patient_id"],
            side=row["side"],
            status=row["status"],
            origin=row["origin"],
            started_at=started,
            finished_at=_dt(row["finished_at"]),
            quality=_unjson(row["quality"]),
            reasons=_unjson(row["reasons"]) or [],
            score=score,
            has_landmarks=bool(row["has_lm"]),
            has_world=bool(row["has_world"]),
            role=row["role"],
            profile=_unjson(row["profile"]),
            item=row["item"],
            recording_of=row["recording_of"],
            uuid=row["uuid"],
        )

    def _score_from(self, row: sqlite3.Row, score_id: int, trial_id: int, created: str) -> ScoreRecord:
        probs = _unjson(row["probabilities"])
        return ScoreRecord(
            final_score=row["final_score"],
            model_score=row["model_score"],
            rule_score=row["rule_score"],
            probabilities=tuple(probs) if probs is not None else None,
            confidence=row["confidence"],
            model_version=row["model_version"],
            rule_version=row["rule_version"],
            review=bool(row["review"]),
            detail=_unjson(row["detail"]),
            mode=row["mode"],
            reference_trial_id=row["reference_trial_id"],
            id=score_id,
            trial_id=trial_id,
            created_at=_dt(created),
        )

    def get_trial(self, trial_id: int) -> TrialRecord | None:
        rows = self._read(f"{self._TRIAL_SELECT} WHERE t.id = ?", (trial_id,))
        return self._trial(rows[0]) if rows else None

    def list_trials(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        patient_id: int | None = None,
        status: str | None = None,
        item: str | None = None,
    ) -> list[TrialRecord]:
        """Newest first; ``item`` keeps one assessment item's trials."""
        where: list[str] = []
        params: list[Any] = []
        if item is not None:
            where.append("t.item = ?")
            params.append(item)
        if patient_id is not None:
            where.append("t.patient_id = ?")
            params.append(patient_id)
        if status is not None:
            where.append("t.status = ?")
            params.append(status)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._read(
            f"{self._TRIAL_SELECT}{clause} ORDER BY t.id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [self._trial(r) for r in rows]

    def last_trial(self) -> TrialRecord | None:
        trials = self.list_trials(limit=1)
        return trials[0] if trials else None

    def count_trials(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM trials")[0][0])

    def session_reference(
        self, patient_id: int, side: str, since: datetime, before: datetime | None = None
    ) -> TrialRecord | None:
        """The newest reference trial of ``patient_id``'s unaffected hand (``side``) started
        at or after ``since`` (and before ``before``, when given) whose landmarks are stored
        and that finished (``scored``, or ``rejected`` — then it is reported as unusable), or
        None. Cancelled, failed and interrupted recordings are not references."""
        sql = (
            f"{self._TRIAL_SELECT} WHERE t.patient_id = ? AND t.role = 'reference' AND t.side = ?"
            " AND t.status IN ('scored', 'rejected') AND t.started_at >= ?"
            " AND EXISTS (SELECT 1 FROM landmarks l WHERE l.trial_id = t.id)"
        )
        params: list[Any] = [patient_id, side, _ts(since)]
        if before is not None:
            sql += " AND t.started_at < ?"
            params.append(_ts(before))
        rows = self._read(f"{sql} ORDER BY t.started_at DESC, t.id DESC LIMIT 1", tuple(params))
        return self._trial(rows[0]) if rows else None

    def load_trial(self, trial_id: int) -> Trial:
        """The stored landmarks of a trial, ready to re-score (with its world landmarks when
        they were stored; ``world`` None for a trial stored without them)."""
        rows = self._read("SELECT format, data FROM landmarks WHERE trial_id = ?", (trial_id,))
        if not rows:
            raise StoreError(f"trial {trial_id} has no stored landmarks")
        return decode_trial(bytes(rows[0]["data"]), rows[0]["format"])

    def scores_for(self, trial_id: int) -> list[ScoreRecord]:
        rows = self._read("SELECT * FROM scores WHERE trial_id = ? ORDER BY id", (trial_id,))
        return [self._score_from(r, r["id"], r["trial_id"], r["created_at"]) for r in rows]

    # -- clinician labels ----------------------------------------------------------------
    def add_label(self, trial_id: int, clinician: str, score: int | None, note: str | None = None) -> int:
        """A clinician's score for a trial (None: not scorable), with an audit entry."""
        if score not in (None, 0, 1, 2):
            raise StoreError(f"a label score is 0, 1, 2 or None, got {score!r}")
        if not clinician:
            raise StoreError("a label needs the clinician's user name")
        now = _ts(self._clock())
        with self._write("add label") as c:
            if not c.execute("SELECT 1 FROM trials WHERE id = ?", (trial_id,)).fetchone():
                raise StoreError(f"no trial {trial_id}")
            cur = c.execute(
                "INSERT INTO labels (trial_id, clinician, score, note, created_at) VALUES (?, ?, ?, ?, ?)",
                (trial_id, clinician, score, note, now),
            )
            label_id = int(cur.lastrowid or 0)
            c.execute(
                "INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, 'label', ?)",
                (now, clinician, _json({"trial_id": trial_id, "label_id": label_id})),
            )
            self._saved(c, SaveEvent("label", trial_id, label_id))
            return label_id

    def labels_for(self, trial_id: int) -> list[Label]:
        rows = self._read("SELECT * FROM labels WHERE trial_id = ? ORDER BY id", (trial_id,))
        out = []
        for r in rows:
            created = _dt(r["created_at"])
            assert created is not None
            out.append(Label(r["id"], r["trial_id"], r["clinician"], r["score"], r["note"], created))
        return out

    # -- outbox (device/fleet/) -----------------------------------------------------------
    def add_save_hook(self, hook: SaveHook) -> None:
        """Call ``hook(store, event)`` inside every transaction that finishes a trial or adds
        a label; the :class:`OutboxMessage`\\ s it returns are queued in that transaction. The
        hook may read through this store (same connection: it sees the uncommitted write).
        A hook that raises rolls the whole write back (a :class:`StoreError`)."""
        with self._lock:
            self._save_hooks.append(hook)

    def remove_save_hook(self, hook: SaveHook) -> None:
        with self._lock:
            if hook in self._save_hooks:
                self._save_hooks.remove(hook)

    def _saved(self, c: sqlite3.Connection, event: SaveEvent) -> None:
        for hook in list(self._save_hooks):
            try:
                messages = list(hook(self, event))
            except StoreError:
                raise
            except Exception as exc:
                log.exception("save hook failed for %s", event)
                raise StoreError(
                    f"the fleet message for trial {event.trial_id} could not be made ({exc}), so "
                    "nothing was saved"
                ) from exc
            self._insert_outbox(c, messages)

    def _insert_outbox(self, c: sqlite3.Connection, messages: Sequence[OutboxMessage]) -> int:
        """Queue ``messages``; then drop the oldest status messages beyond ``outbox_limit``.
        Returns how many were dropped."""
        now = _ts(self._clock())
        for m in messages:
            if m.kind not in OUTBOX_KINDS:
                raise StoreError(f"unknown outbox kind {m.kind!r}; valid: {', '.join(OUTBOX_KINDS)}")
            c.execute(
                "INSERT INTO outbox (message_id, kind, topic, payload, retain, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (m.message_id, m.kind, m.topic, m.payload, int(m.retain), now),
            )
        if self.outbox_limit is None or not messages:
            return 0
        excess = int(c.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]) - self.outbox_limit
        if excess <= 0:
            return 0
        cur = c.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE kind = 'status' "
            "ORDER BY id LIMIT ?)",
            (excess,),
        )
        if cur.rowcount:
            log.warning("outbox full: dropped the %d oldest status message(s)", cur.rowcount)
        return int(cur.rowcount)

    def enqueue(self, messages: Sequence[OutboxMessage]) -> int:
        """Queue messages that report nothing else stored (status); returns how many old
        status messages were dropped to stay within ``outbox_limit``."""
        with self._write("queue messages") as c:
            return self._insert_outbox(c, messages)

    def outbox(self, *, after_id: int = 0, limit: int = 100) -> list[QueuedMessage]:
        """Queued messages in sending order, from the first after ``after_id``."""
        rows = self._read("SELECT * FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return [
            QueuedMessage(
                message_id=r["message_id"],
                kind=r["kind"],
                topic=r["topic"],
                payload=r["payload"],
                retain=bool(r["retain"]),
                id=r["id"],
                created_at=_dt(r["created_at"]),
            )
            for r in rows
        ]

    def outbox_done(self, ids: Iterable[int]) -> None:
        """Remove messages the broker acknowledged."""
        ids = list(ids)
        if not ids:
            return
        with self._write("remove sent messages") as c:
            c.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def outbox_count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM outbox")[0][0])

    # -- audit ---------------------------------------------------------------------------
    def get_setting(self, key: str) -> Any:
        """The unit setting ``key`` (JSON value), or None when unset."""
        rows = self._read("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else None

    def set_setting(self, key: str, value: Any, actor: str = "system") -> None:
        """Set (or with None, clear) the unit setting ``key``; audited."""
        with self._write(f"set {key}") as c:
            if value is None:
                c.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                c.execute(
                    "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    (key, json.dumps(value), _ts(self._clock())),
                )
            c.execute(
                "INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)",
                (_ts(self._clock()), actor, "setting", json.dumps({"key": key, "value": value})),
            )

    def audit(self, actor: str, action: str, detail: dict[str, Any] | None = None) -> int:
        """Append to the audit log (who did what; no patient data in ``detail``)."""
        with self._write("audit") as c:
            cur = c.execute(
                "INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)",
                (_ts(self._clock()), actor, action, _json(detail)),
            )
            return int(cur.lastrowid or 0)

    def list_audit(self, limit: int = 100) -> list[AuditEntry]:
        rows = self._read("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        out = []
        for r in rows:
            at = _dt(r["at"])
            assert at is not None
            out.append(AuditEntry(r["id"], at, r["actor"], r["action"], _unjson(r["detail"])))
        return out

    # -- lifecycle -----------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Fold the WAL into the database file (before a power-off: shutdown-safe idle)."""
        with self._lock:
            try:
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise self._error("checkpoint", exc) from exc

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.close()
            finally:
                log.info("trial store %s closed", self.path)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.path} {'closed' if self.closed else 'open'}>"
