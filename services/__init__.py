"""Everything that is not Telegram, grouped by context: ``getcourse``, ``salebot``, ``linking``,
``privacy``, ``console`` and ``storage`` (SQLite). The modules at this level are shared by every
context: typed errors, domain records, emails, error-text redaction, backoff, supervision of
background loops, health of the external services, operator notices, reachability."""
