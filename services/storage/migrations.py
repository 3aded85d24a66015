"""Numbered schema migrations, applied in order at start-up; ``PRAGMA user_version`` holds the
number of the last one applied. Never edit a released migration: append a new one."""

MIGRATIONS: tuple[str, ...] = (
    # 1: links, the Salebot outbox, the GetCourse export-request ledger and dialog (FSM) state.
    """
    CREATE TABLE links (
        telegram_id       INTEGER PRIMARY KEY,
        email             TEXT    NOT NULL,
        gc_user_id        TEXT    NOT NULL,
        gc_name           TEXT    NOT NULL DEFAULT '',
        salebot_client_id INTEGER,
        linked_at         TEXT    NOT NULL,
        updated_at        TEXT    NOT NULL
    );
    CREATE INDEX links_email ON links (email);
    CREATE INDEX links_gc_user_id ON links (gc_user_id);

    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        telegram_id     INTEGER NOT NULL,
        variables       TEXT    NOT NULL,
        state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'superseded')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL    NOT NULL,
        last_error      TEXT,
        created_at      TEXT    NOT NULL,
        updated_at      TEXT    NOT NULL
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE INDEX outbox_telegram_id ON outbox (telegram_id);

    CREATE TABLE getcourse_export_requests (
        id   INTEGER PRIMARY KEY AUTOINCREMENT,
        at   REAL NOT NULL,
        kind TEXT NOT NULL
    );
    CREATE INDEX getcourse_export_requests_at ON getcourse_export_requests (at);

    CREATE TABLE dialog_state (
        key   TEXT PRIMARY KEY,
        state TEXT,
        data  TEXT NOT NULL DEFAULT '{}'
    );
    """,
    # 2: reliability. Outbox items can fail for good and carry their cause; started GetCourse
    # exports are remembered so a restart collects them instead of paying for a new one;
    # persisted GetCourse pauses (after 903); every lookup a person asked for (abuse limits,
    # statistics); conflicts; people who blocked the bot.
    """
    CREATE TABLE outbox_v2 (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        telegram_id     INTEGER NOT NULL,
        variables       TEXT    NOT NULL,
        state           TEXT    NOT NULL
                        CHECK (state IN ('pending', 'delivered', 'superseded', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL    NOT NULL,
        cause           TEXT,
        last_error      TEXT,
        created_at      TEXT    NOT NULL,
        updated_at      TEXT    NOT NULL
    );
    INSERT INTO outbox_v2 (id, telegram_id, variables, state, attempts, next_attempt_at,
                           last_error, created_at, updated_at)
        SELECT id, telegram_id, variables, state, attempts, next_attempt_at,
               last_error, created_at, updated_at FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_v2 RENAME TO outbox;
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE INDEX outbox_telegram_id ON outbox (telegram_id);

    CREATE TABLE getcourse_exports (
        export_id   INTEGER PRIMARY KEY,
        email       TEXT NOT NULL,
        started_at  REAL NOT NULL,
        finished_at REAL,
        outcome     TEXT
    );

    CREATE TABLE service_pauses (
        name  TEXT PRIMARY KEY,
        until REAL NOT NULL,
        cause TEXT NOT NULL
    );

    CREATE TABLE lookups (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        telegram_id INTEGER NOT NULL,
        at          REAL    NOT NULL,
        outcome     TEXT    NOT NULL
    );
    CREATE INDEX lookups_person ON lookups (telegram_id, at);
    CREATE INDEX lookups_at ON lookups (at);

    CREATE TABLE link_conflicts (
        id                 INTEGER PRIMARY KEY AUTOINCREMENT,
        telegram_id        INTEGER NOT NULL,
        holder_telegram_id INTEGER NOT NULL,
        email              TEXT    NOT NULL,
        gc_user_id         TEXT    NOT NULL,
        resolution         TEXT    NOT NULL,
        at                 TEXT    NOT NULL
    );

    CREATE TABLE blocked_chats (
        telegram_id INTEGER PRIMARY KEY,
        since       TEXT NOT NULL
    );
    """,
    # 3: the single-instance lock: one row while a bot process runs on this database.
    """
    CREATE TABLE instance_lock (
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        owner        TEXT    NOT NULL,
        host         TEXT    NOT NULL,
        pid          INTEGER NOT NULL,
        mode         TEXT    NOT NULL,
        acquired_at  REAL    NOT NULL,
        heartbeat_at REAL    NOT NULL
    );
    """,
    # 4: the operator console. Who each person is on Telegram (for lookups by @username), which
    # operator made a link, the link history (for statistics and a person's history) and the
    # audit of every operator action. Existing links enter the history as made when they were.
    """
    CREATE TABLE telegram_profiles (
        telegram_id INTEGER PRIMARY KEY,
        username    TEXT,
        first_name  TEXT NOT NULL DEFAULT '',
        updated_at  REAL NOT NULL
    );
    CREATE INDEX telegram_profiles_username ON telegram_profiles (username COLLATE NOCASE);

    ALTER TABLE links ADD COLUMN linked_by INTEGER;
    CREATE INDEX links_salebot_client_id ON links (salebot_client_id);

    CREATE TABLE link_events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          REAL    NOT NULL,
        kind        TEXT    NOT NULL CHECK (kind IN ('linked', 'relinked', 'unlinked')),
        telegram_id INTEGER NOT NULL,
        operator_id INTEGER
    );
    CREATE INDEX link_events_at ON link_events (at);
    CREATE INDEX link_events_telegram_id ON link_events (telegram_id);
    INSERT INTO link_events (at, kind, telegram_id)
        SELECT (julianday(linked_at) - 2440587.5) * 86400.0, 'linked', telegram_id FROM links;

    CREATE TABLE operator_audit (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          REAL    NOT NULL,
        operator_id INTEGER NOT NULL,
        action      TEXT    NOT NULL,
        target      TEXT    NOT NULL,
        before      TEXT    NOT NULL DEFAULT '{}',
        after       TEXT    NOT NULL DEFAULT '{}'
    );
    CREATE INDEX operator_audit_at ON operator_audit (at);
    """,
    # 5: the local GetCourse directory (a mirror of the school's users, so most lookups need no
    # export) and the directory syncs: the window in progress and its export ID, so a sync killed
    # mid-way resumes where it stopped and collects the export it already paid for.
    """
    CREATE TABLE gc_directory (
        gc_user_id    TEXT PRIMARY KEY,
        email         TEXT NOT NULL,
        phone         TEXT NOT NULL DEFAULT '',
        first_name    TEXT NOT NULL DEFAULT '',
        last_name     TEXT NOT NULL DEFAULT '',
        status        TEXT,
        created_at    TEXT NOT NULL DEFAULT '',
        custom_fields TEXT NOT NULL DEFAULT '{}',
        synced_at     REAL NOT NULL
    );
    CREATE INDEX gc_directory_email ON gc_directory (email);
    CREATE INDEX gc_directory_phone ON gc_directory (phone) WHERE phone != '';
    CREATE INDEX gc_directory_synced_at ON gc_directory (synced_at);
    CREATE INDEX gc_directory_created_at ON gc_directory (created_at);

    CREATE TABLE directory_syncs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT    NOT NULL CHECK (kind IN ('full', 'incremental')),
        started_at  REAL    NOT NULL,
        first_day   TEXT    NOT NULL,
        last_day    TEXT    NOT NULL,
        next_day    TEXT    NOT NULL,
        export_id   INTEGER,
        rows        INTEGER NOT NULL DEFAULT 0,
        finished_at REAL,
        outcome     TEXT
    );
    CREATE INDEX directory_syncs_open ON directory_syncs (kind, finished_at);
    """,
    # 6: lookups waiting for a GetCourse export, one per person (a newer email replaces it), kept
    # until the person has been told the result, so a restart neither loses nor repeats them;
    # and which lookups asked GetCourse live.
    """
    CREATE TABLE queued_lookups (
        telegram_id     INTEGER PRIMARY KEY,
        chat_id         INTEGER NOT NULL,
        email           TEXT    NOT NULL,
        lookup_id       INTEGER NOT NULL,
        queued_at       REAL    NOT NULL,
        result          TEXT,
        next_attempt_at REAL    NOT NULL DEFAULT 0
    );
    CREATE INDEX queued_lookups_result ON queued_lookups (result, queued_at);

    -- Lookups that asked GetCourse directly (the Tech API): the only ones the everyone-per-hour
    -- limit counts, now that directory hits are free and queued misses are paced.
    ALTER TABLE lookups ADD COLUMN live INTEGER NOT NULL DEFAULT 0;
    """,
    # 7: the command menus set for operators, so one who is no longer an operator loses theirs.
    """
    CREATE TABLE operator_menus (
        telegram_id INTEGER NOT NULL,
        chat_id     INTEGER NOT NULL,
        PRIMARY KEY (telegram_id, chat_id)
    );
    """,
    # 8: privacy (issue 12). The write that blanks an erased person's Salebot variables is the
    # one row kept about them, and only until it is delivered; the local directory keeps only
    # the columns lookups and cards use, not every column a GetCourse export carries.
    """
    ALTER TABLE outbox ADD COLUMN erase_when_delivered INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE gc_directory DROP COLUMN custom_fields;
    """,
    # 9: proofs of ownership waiting for the person (issue 12): one per person, replaced by a newer
    # email. Nothing here is a link; ``gc_user_id`` is NULL when GetCourse has no such user, so the
    # proof can never succeed but reads the same. The code is kept only as an HMAC with its salt.
    """
    CREATE TABLE ownership_proofs (
        id                    INTEGER PRIMARY KEY AUTOINCREMENT,
        telegram_id           INTEGER NOT NULL UNIQUE,
        chat_id               INTEGER NOT NULL,
        email                 TEXT    NOT NULL,
        gc_user_id            TEXT,
        gc_name               TEXT    NOT NULL DEFAULT '',
        gc_status             TEXT,
        phone                 TEXT    NOT NULL DEFAULT '',
        code_hash             TEXT,
        code_salt             TEXT,
        code_sent_at          REAL,
        code_expires_at       REAL,
        code_tries_left       INTEGER NOT NULL DEFAULT 0,
        codes_sent            INTEGER NOT NULL DEFAULT 0,
        operator_asked_at     REAL,
        created_at            REAL    NOT NULL
    );
    CREATE INDEX ownership_proofs_created_at ON ownership_proofs (created_at);

    -- Code letters sent in the last hour per address (a SHA-256 of it, rows older than an hour
    -- pruned), so nobody can flood a student's mailbox or collect codes to guess at.
    CREATE TABLE proof_letters (
        address_hash TEXT NOT NULL,
        sent_at   REAL NOT NULL
    );
    CREATE INDEX proof_letters_address_hash ON proof_letters (address_hash, sent_at);
    """,
    # 10: both directions (issue 13). GetCourse field writes (the Telegram and Salebot IDs put
    # into the GetCourse user's additional fields, or blanked), GetCourse events from process
    # "call URL" operations, the Salebot callbacks they and new links cause, the import-API
    # request ledger (its own limits, never the export budget), and configuration problems
    # already told to the operators (told once).
    """
    CREATE TABLE getcourse_field_writes (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        telegram_id     INTEGER NOT NULL,
        email           TEXT    NOT NULL,
        gc_user_id      TEXT    NOT NULL,
        blank           INTEGER NOT NULL,
        fields          TEXT    NOT NULL DEFAULT '{}',
        state           TEXT    NOT NULL
                        CHECK (state IN ('pending', 'delivered', 'superseded', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL    NOT NULL,
        cause           TEXT,
        last_error      TEXT,
        created_at      REAL    NOT NULL,
        updated_at      REAL    NOT NULL
    );
    CREATE INDEX getcourse_field_writes_due ON getcourse_field_writes (state, next_attempt_at);
    CREATE INDEX getcourse_field_writes_person ON getcourse_field_writes (telegram_id);

    CREATE TABLE getcourse_events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        event       TEXT    NOT NULL,
        event_id    TEXT    UNIQUE,
        gc_user_id  TEXT    NOT NULL DEFAULT '',
        email       TEXT    NOT NULL DEFAULT '',
        variables   TEXT    NOT NULL DEFAULT '{}',
        received_at REAL    NOT NULL,
        telegram_id INTEGER,
        state       TEXT    NOT NULL
                    CHECK (state IN ('waiting_link', 'queued', 'expired'))
    );
    CREATE INDEX getcourse_events_waiting ON getcourse_events (state, received_at);
    CREATE INDEX getcourse_events_person ON getcourse_events (telegram_id);
    CREATE INDEX getcourse_events_gc_user_id ON getcourse_events (gc_user_id);
    CREATE INDEX getcourse_events_email ON getcourse_events (email);

    CREATE TABLE salebot_callbacks (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        telegram_id     INTEGER NOT NULL,
        event_row       INTEGER REFERENCES getcourse_events (id) ON DELETE CASCADE,
        message         TEXT    NOT NULL,
        variables       TEXT    NOT NULL DEFAULT '{}',
        variables_saved INTEGER NOT NULL DEFAULT 0,
        state           TEXT    NOT NULL CHECK (state IN
                        ('pending', 'sending', 'delivered', 'uncertain', 'failed', 'superseded')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL    NOT NULL,
        cause           TEXT,
        last_error      TEXT,
        created_at      REAL    NOT NULL,
        updated_at      REAL    NOT NULL
    );
    CREATE INDEX salebot_callbacks_due ON salebot_callbacks (state, next_attempt_at);
    CREATE INDEX salebot_callbacks_person ON salebot_callbacks (telegram_id);
    CREATE INDEX salebot_callbacks_event ON salebot_callbacks (event_row);

    CREATE TABLE getcourse_import_requests (
        id   INTEGER PRIMARY KEY AUTOINCREMENT,
        at   REAL NOT NULL,
        kind TEXT NOT NULL
    );
    CREATE INDEX getcourse_import_requests_at ON getcourse_import_requests (at);

    CREATE TABLE told_operators (
        key TEXT PRIMARY KEY,
        at  REAL NOT NULL
    );
    """,
    # 11: what GetCourse was seen not to take (an ``email`` export filter, a status filter), kept
    # so a restart does not pay to learn it again; sync runs walk newest-first and keep the first
    # day of the window in progress (resuming it reads the same window) and the moment before
    # which every registration is read once the windows are done (covered_at: the start of the
    # run, or later when a window read for people waiting reached today). Runs left open by the
    # oldest-first walk cannot be resumed that way: they are closed and the next run starts anew.
    """
    CREATE TABLE getcourse_quirks (
        name       TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        learned_at REAL NOT NULL
    );
    ALTER TABLE directory_syncs ADD COLUMN window_first TEXT;
    ALTER TABLE directory_syncs ADD COLUMN covered_at REAL;
    UPDATE directory_syncs SET finished_at = started_at, outcome = 'abandoned'
        WHERE finished_at IS NULL;
    """,
)
