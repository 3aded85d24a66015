"""What the bot forgets: a person erased on ``/forget`` or an operator's ``/erase``
(``erasure``), and traces older than ``RETENTION_DAYS`` deleted daily (``retention``)."""
