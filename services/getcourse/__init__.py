"""GetCourse: the clients of its three APIs (the legacy export API in ``exports``, the Tech API
in ``tech_api``, the import API in ``import_api``), the ledgers that keep this bot within the
school's request limits (``budget``), and the local directory of the school's users every lookup
goes through (``directory``), filled by scheduled syncs (``directory_sync``) and by exports
coalesced for the lookups it missed (``coalescing``)."""
