"""SQLite storage: one database file, WAL mode, numbered migrations, one repository per table."""
