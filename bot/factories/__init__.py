"""Per-context factories: each module builds one context's services from the settings and the
shared resources (the database, the HTTP clients); ``bot.app.create_services`` composes them.

- ``shared``: the database and one HTTP client per external system
- ``runtime``: supervision, call health, operator notices
- ``getcourse``: the API clients, the export budgets, the local directory and its sync
- ``salebot``: the client and the outbox that delivers its writes
- ``linking``: the link service with its ownership proof, the lookup queue, the bridge
- ``console``: the operators' console
- ``privacy``: erasure and retention"""
