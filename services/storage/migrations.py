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
)
