"""Salebot: the API client (``client``) and the outbox worker that delivers the queued writes of
a link's variables, retrying until they land (``outbox``)."""
