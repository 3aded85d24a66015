"""Letters with one-time codes, sent by SMTP (aiosmtplib) in the background.

Why not the persistent outbox: a code is worth having for 15 minutes only, and the outbox would
have to keep the letter, code included, in plain text in the database, where only its hash may
live. So a letter is sent at once from memory and a passing failure is retried a few times while
the code is still valid; a letter lost to a restart is replaced by the person's "new code".
Sending in the background also keeps the reply to a known email as quick as to an unknown one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any, Literal

import aiosmtplib

from services.email import mask_email
from services.errors import MailRejected, MailUnavailable

log = logging.getLogger(__name__)

# Pauses before the retries of a letter that failed for a passing reason (the code lives 15 min).
RETRY_DELAYS = (5.0, 30.0, 120.0)
LETTERS_AT_ONCE = 4
TIMEOUT = 20.0


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: Literal["starttls", "tls", "none"]
    sender: str
    username: str | None = None
    password: str | None = None  # from SecretStr; never logged


@dataclass(frozen=True)
class Letter:
    to: str
    subject: str
    body: str


class LetterSender:
    def __init__(self, config: SmtpConfig, retry_delays: Sequence[float] = RETRY_DELAYS) -> None:
        self._config = config
        self._retry_delays = tuple(retry_delays)
        self._gate = asyncio.Semaphore(LETTERS_AT_ONCE)
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, letter: Letter, telegram_id: int) -> None:
        """Send in the background; returns at once and never raises."""
        task = asyncio.create_task(self._deliver(letter, telegram_id), name="code-letter")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def sending(self) -> int:
        """Letters still on their way (being sent or waiting for a retry)."""
        return len(self._tasks)

    async def close(self) -> None:
        """Stop letters still retrying (their codes can be asked for again)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _deliver(self, letter: Letter, telegram_id: int) -> None:
        to = mask_email(letter.to)
        for delay in (0.0, *self._retry_delays):
            if delay:
                await asyncio.sleep(delay)
            try:
                async with self._gate:
                    await self.send_now(letter)
            except MailUnavailable as error:
                log.warning(
                    "code letter for telegram %s to %s not sent: %s", telegram_id, to, error
                )
                continue
            except MailRejected as error:
                log.error("code letter for telegram %s to %s refused: %s", telegram_id, to, error)
                return
            log.info("code letter for telegram %s sent to %s", telegram_id, to)
            return
        log.error("code letter for telegram %s to %s given up", telegram_id, to)

    async def send_now(self, letter: Letter) -> None:
        """One attempt; raises ``MailUnavailable`` (worth retrying) or ``MailRejected``."""
        config = self._config
        message = EmailMessage()
        message["From"] = config.sender
        message["To"] = letter.to
        message["Subject"] = letter.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=parseaddr(config.sender)[1].partition("@")[2])
        message.set_content(letter.body)
        with _mail_errors():
            await aiosmtplib.send(message, **self._connection(), timeout=TIMEOUT)

    async def check(self) -> None:
        """Connect, secure the connection and log in as a letter would, sending nothing (for
        ``python -m bot check``); raises ``MailUnavailable`` or ``MailRejected``."""
        client = aiosmtplib.SMTP(**self._connection(), timeout=TIMEOUT)
        with _mail_errors():
            await client.connect()
            await client.quit()

    def _connection(self) -> dict[str, Any]:
        config = self._config
        return {
            "hostname": config.host,
            "port": config.port,
            "username": config.username,
            "password": config.password,
            "use_tls": config.security == "tls",
            "start_tls": config.security == "starttls",
        }


@contextlib.contextmanager
def _mail_errors() -> Iterator[None]:
    """aiosmtplib's failures as ours: a refusal, or a passing failure worth retrying."""
    try:
        yield
    except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPSenderRefused) as error:
        raise MailRejected(type(error).__name__) from None
    except aiosmtplib.SMTPAuthenticationError as error:
        raise MailRejected(f"authentication failed ({error.code})") from None
    except aiosmtplib.SMTPResponseException as error:
        if 500 <= error.code < 600:
            raise MailRejected(f"SMTP {error.code}") from None
        raise MailUnavailable(f"SMTP {error.code}") from None
    except (aiosmtplib.SMTPException, OSError) as error:
        raise MailUnavailable(type(error).__name__) from None
