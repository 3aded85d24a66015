"""A mail server stand-in (aiosmtpd) on loopback: keeps every letter the bot sends, and can be
told to answer the next letters with an SMTP error.

Plain SMTP without TLS, as the bot's ``SMTP_SECURITY=none`` (accepted for loopback only)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, Envelope, Session

CODE_IN_LETTER = re.compile(r"\b(\d{6})\b")


@dataclass(frozen=True)
class ReceivedLetter:
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    message: EmailMessage

    @property
    def code(self) -> str | None:
        """The six-digit code in the body, if any."""
        found = CODE_IN_LETTER.search(self.body)
        return found.group(1) if found else None


class _Handler:
    def __init__(self, server: MailStandIn) -> None:
        self._server = server

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self._server.receive(envelope)


class MailStandIn:
    def __init__(self, on_letter: Callable[[ReceivedLetter], None] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.letters: list[ReceivedLetter] = []
        self.on_letter = on_letter  # called with each letter kept
        self._failures: list[str] = []
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        handler = _Handler(self)
        self._server = await loop.create_server(
            lambda: SMTP(handler, hostname="mail.sandbox", ident="sandbox mail stand-in"),
            self.host,
            0,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def fail_next(self, times: int = 1, reply: str = "451 4.3.0 Try again later") -> None:
        """The next ``times`` letters are answered with ``reply`` instead of being kept."""
        self._failures.extend([reply] * times)

    def receive(self, envelope: Envelope) -> str:
        if self._failures:
            return self._failures.pop(0)
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain",))
        letter = ReceivedLetter(
            sender=envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
            subject=str(message["Subject"] or ""),
            body=body.get_content() if body is not None else "",
            message=message,
        )
        self.letters.append(letter)
        self._arrived.set()
        if self.on_letter is not None:
            self.on_letter(letter)
        return "250 OK"

    def letters_to(self, address: str) -> list[ReceivedLetter]:
        return [letter for letter in self.letters if address in letter.recipients]

    async def wait_for_letter(
        self, address: str, *, after: int = 0, within: float = 10.0
    ) -> ReceivedLetter:
        """The ``after``-th (0: first) letter to ``address``, waiting for it to come."""
        deadline = time.monotonic() + within
        while True:
            letters = self.letters_to(address)
            if len(letters) > after:
                return letters[after]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no letter #{after + 1} to {address} within {within}s")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                continue
