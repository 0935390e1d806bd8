"""The schema, as numbered migrations. Append a new migration; never edit or drop one.

Each migration is a tuple of statements applied in one transaction together with the row
in ``schema_version`` that records it, so a crash mid-migration leaves the old schema.
Data is never dropped: a later migration may add tables, columns or indexes only.
"""

from __future__ import annotations

# A random (version 4) UUID in SQL, for rows that predate the ``trials.uuid`` column.
SQL_UUID4 = (
    "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)"
    " || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-'"
    " || hex(randomblob(6)))"
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the first schema
    (
        """CREATE TABLE patients (
            id INTEGER PRIMARY KEY,
            code TEXT NOT NULL UNIQUE,                 -- pseudonymous code, never a name
            affected_side TEXT CHECK (affected_side IN ('left', 'right')),
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE trials (
            id INTEGER PRIMARY KEY,
            patient_id INTEGER REFERENCES patients(id),
            side TEXT CHECK (side IN ('left', 'right')),
            status TEXT NOT NULL CHECK (status IN (
                'recording', 'scoring', 'scored', 'rejected', 'cancelled', 'error',
                'interrupted')),
            origin TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            quality TEXT,                              -- JSON object
            reasons TEXT NOT NULL DEFAULT '[]'         -- JSON list of {code, message}
        )""",
        "CREATE INDEX trials_started ON trials(started_at)",
        "CREATE INDEX trials_status ON trials(status)",
        """CREATE TABLE landmarks (
            trial_id INTEGER PRIMARY KEY REFERENCES trials(id),
            format TEXT NOT NULL,                      -- 'npz-v1': see device/store/blobs.py
            num_frames INTEGER NOT NULL,
            data BLOB NOT NULL
        )""",
        """CREATE TABLE scores (
            id INTEGER PRIMARY KEY,
            trial_id INTEGER NOT NULL REFERENCES trials(id),
            created_at TEXT NOT NULL,
            model_version TEXT,
            rule_version TEXT,
            probabilities TEXT,                        -- JSON [p0, p1, p2]
            model_score INTEGER CHECK (model_score IN (0, 1, 2)),
            rule_score INTEGER CHECK (rule_score IN (0, 1, 2)),
            final_score INTEGER CHECK (final_score IN (0, 1, 2)),
            confidence REAL,
            review INTEGER NOT NULL DEFAULT 0,         -- 1: flagged for clinician review
            detail TEXT                                -- JSON, anything else the scorer said
        )""",
        "CREATE INDEX scores_trial ON scores(trial_id)",
        """CREATE TABLE labels (
            id INTEGER PRIMARY KEY,
            trial_id INTEGER NOT NULL REFERENCES trials(id),
            clinician TEXT NOT NULL,
            score INTEGER CHECK (score IN (0, 1, 2)),  -- NULL: clinician says not scorable
            note TEXT,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX labels_trial ON labels(trial_id)",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT                                -- JSON
        )""",
    ),
    # 2: scoring against the unaffected hand (issue 10). A trial's role: an "assessment" of
    # the affected hand or a "reference" recording of the unaffected hand, whose measured
    # range of motion (the reference profile, JSON) is kept with it; each score says which
    # mode made it ("absolute" or "reference") and which reference trial it was compared with.
    # Rows written before this migration are assessments scored in the absolute mode.
    (
        "ALTER TABLE trials ADD COLUMN role TEXT NOT NULL DEFAULT 'assessment' "
        "CHECK (role IN ('assessment', 'reference'))",
        "ALTER TABLE trials ADD COLUMN profile TEXT",  # JSON: the reference profile
        "ALTER TABLE scores ADD COLUMN mode TEXT CHECK (mode IN ('absolute', 'reference'))",
        "ALTER TABLE scores ADD COLUMN reference_trial_id INTEGER REFERENCES trials(id)",
        "CREATE INDEX trials_patient_role ON trials(patient_id, role, started_at)",
    ),
    # 3: world landmarks (issue 16). The landmark model's world output (metres, in the hand's
    # own frame) is kept with the image landmarks in the same compressed blob, format
    # 'npz-v2' (device/store/blobs.py); ``world`` says whether a trial's blob holds them, so
    # trials with a 3D hand frame can be found without decoding. Rows written before this
    # migration are 'npz-v1' blobs without world landmarks (world = 0): they load with
    # ``Trial.world`` None and are scored through the 2D path.
    ("ALTER TABLE landmarks ADD COLUMN world INTEGER NOT NULL DEFAULT 0 CHECK (world IN (0, 1))",),
    # 4: assessment items (issue 17). Each trial row is one item's assessment ("mass_flexion",
    # "mass_extension", … — device/items); a recording that scores several items (make a
    # fist, then open the hand) is stored as one row per item with the same landmarks, the
    # later rows pointing at the first (``recording_of``). Rows written before this migration
    # are mass flexion. ``settings`` keeps the unit's own state that must survive a restart
    # (the patient a clinician bound the unit to), as JSON values.
    (
        "ALTER TABLE trials ADD COLUMN item TEXT NOT NULL DEFAULT 'mass_flexion'",
        "ALTER TABLE trials ADD COLUMN recording_of INTEGER REFERENCES trials(id)",
        "CREATE INDEX trials_item ON trials(item, started_at)",
        """CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,                       -- JSON
            updated_at TEXT NOT NULL
        )""",
    ),
    # 5: the fleet outbox (issue 21). Every trial gets a
    # ``uuid`` (random, version 4) that names it beyond this device: a fleet consumer drops
    # duplicate messages of one trial by it; rows written before this migration get one here.
    # ``outbox`` holds every MQTT message to publish (device/fleet/), written in the same
    # transaction as what it reports (a finished trial, a clinician label) and removed only
    # when the broker acknowledged it; ``id`` is the sending order (AUTOINCREMENT: never
    # reused). ``topic`` is below ``<prefix>/<unit_id>/``; ``message_id`` stays the same when
    # a message is sent again.
    (
        "ALTER TABLE trials ADD COLUMN uuid TEXT",
        f"UPDATE trials SET uuid = {SQL_UUID4} WHERE uuid IS NULL",
        "CREATE UNIQUE INDEX trials_uuid ON trials(uuid)",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('trial', 'status')),
            topic TEXT NOT NULL,                       -- below <prefix>/<unit_id>/
            payload TEXT NOT NULL,                     -- JSON
            retain INTEGER NOT NULL DEFAULT 0 CHECK (retain IN (0, 1)),
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX outbox_kind ON outbox(kind, id)",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
