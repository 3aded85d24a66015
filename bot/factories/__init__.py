"""Per-context factories: each module builds one context's services from the settings and the
shared resources; ``bot.app.create_services`` composes them, in the order they need each other.

- ``shared``: the database, one HTTP client per external system, the call tracker, the notifier
- ``runtime``: the operator notices (grouped, paced)
- ``getcourse``: the API clients, the budgets, the local directory, its sync and its schedule
- ``salebot``: the client, and the outbox that delivers its writes
- ``linking``: the bridge, the link service with its ownership proof, the lookup queue, events
- ``console``: the operators' console
- ``privacy``: erasure and the retention cleanup"""
