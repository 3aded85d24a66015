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
)
