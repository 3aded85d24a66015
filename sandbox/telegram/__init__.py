"""Stand-in for the Telegram Bot API served on loopback.

The bot talks to it through aiogram exactly as to api.telegram.org (``POST /bot{token}/{method}``),
while tests or the terminal sandbox play the users: they enqueue updates, press buttons and
inspect what the bot sent. Everything runs on one event loop; the user-side methods that only
enqueue are synchronous so they can be called from anywhere on that loop.

Enqueued updates wait for getUpdates, or, while a webhook is set, are POSTed to it in order with
the secret-token header and retried until the bot answers 2xx, as Telegram does.

The modules, one job each: ``standin`` (the server: endpoint, dispatch, faults), ``request``
(reading a call), ``bot_methods`` and ``message_methods`` (the Bot API methods), ``chats``,
``files`` and ``updates`` (what the stand-in's Telegram holds), ``webhook`` (pushing updates),
``users`` (what people do), ``inspection`` (what tests see and wait for), ``changes`` (waiting
without sleeping), ``control`` (the ``/sandbox/`` HTTP routes) and ``records`` (what is kept).
"""

from sandbox.telegram.records import (
    ApiCall,
    CallbackAnswer,
    SentMessage,
    UploadedFile,
    WebhookDelivery,
)
from sandbox.telegram.standin import TelegramStandIn
from sandbox.telegram.webhook import SECRET_HEADER

__all__ = [
    "SECRET_HEADER",
    "ApiCall",
    "CallbackAnswer",
    "SentMessage",
    "TelegramStandIn",
    "UploadedFile",
    "WebhookDelivery",
]
