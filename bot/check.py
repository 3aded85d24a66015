"""``python -m bot check``: settings, then one cheap call to each system that proves the
credentials, a line per check. Exit 0 when all pass, 1 otherwise (2, from ``__main__``, when the
settings themselves are wrong). Every line goes through the log redactor: no secret is printed
even if a library puts one into an error message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError

from bot.app import Services, create_bot, create_services
from bot.log_setup import Redactor
from bot.settings import Settings
from services.errors import GetCourseError, MailError, SalebotError, StartupError
from services.linking.code_mail import LetterSender
from services.redaction import error_text

Outcome = tuple[bool, str]


async def run_check(settings: Settings) -> int:
    redact = Redactor(settings.secrets())

    def report(name: str, outcome: Outcome) -> bool:
        ok, detail = outcome
        print(redact(f"{'ok' if ok else 'FAIL':<5} {name:<10} {detail}"), flush=True)
        return ok

    try:
        services = await create_services(settings)
    except StartupError as error:
        report("database", (False, str(error)))
        return 1
    report("settings", (True, f"{settings.mode} mode, database {settings.database_path}"))
    bot = create_bot(settings)
    me: list[str] = []  # this bot's username, once Telegram told it
    checks: list[tuple[str, Callable[[], Awaitable[Outcome]]]] = [
        ("telegram", lambda: _telegram(bot, me)),
        ("getcourse", lambda: _getcourse(settings, services)),
        ("salebot", lambda: _salebot(settings, services, me)),
    ]
    if settings.ownership_proof:
        checks.append(("proof", lambda: _proof(settings)))
    letters = services.letters
    if letters is not None:
        checks.append(("smtp", lambda: _smtp(settings, letters)))
    try:
        passed = [report(name, await run()) for name, run in checks]
    finally:
        await bot.session.close()
        await services.close()
    return 0 if all(passed) else 1


async def _telegram(bot: Bot, me: list[str]) -> Outcome:
    try:
        user = await bot.get_me()
    except TelegramUnauthorizedError:
        return False, "Telegram rejected BOT_TOKEN (401 Unauthorized)"
    except TelegramAPIError as error:
        return False, f"getMe failed: {type(error).__name__}: {error.message}"
    me.extend(filter(None, [user.username]))
    return True, f"getMe: @{user.username} (id {user.id})"


async def _getcourse(settings: Settings, services: Services) -> Outcome:
    try:
        groups = await services.getcourse.list_groups()
    except GetCourseError as error:
        return False, f"{settings.getcourse_url}: {error_text(error)}"
    used = await services.budget.used()
    return True, (
        f"key accepted by {settings.getcourse_url} ({len(groups)} groups); export budget: "
        f"{used} of {services.budget.limit} requests spent in the last 2 hours"
    )


async def _salebot(settings: Settings, services: Services, me: list[str]) -> Outcome:
    wanted = settings.salebot_bot_username
    if wanted.casefold() in {name.casefold() for name in me}:
        # Salebot receives its bot's updates by webhook; this bot would take them away (polling
        # deletes that webhook, webhook mode replaces it), and the funnel would go silent.
        return False, (
            f"SALEBOT_BOT_USERNAME is this bot itself (@{wanted}): the Salebot funnel needs a "
            "Telegram bot of its own; connect a second bot to Salebot and name that one"
        )
    try:
        channels = await services.salebot.connected_channels()
    except SalebotError as error:
        return False, f"{settings.salebot_base_url}: {error_text(error)}"
    # For Telegram, Salebot's group_id is the bot's username.
    names = {ch.group_id for ch in channels if ch.platform == "telegram" and ch.group_id}
    if wanted.casefold() in {name.casefold() for name in names}:
        return True, f"key accepted; @{wanted} is among the project's Telegram channels"
    found = ", ".join(sorted(names)[:10]) or "none"
    return False, (
        f"key accepted, but @{wanted} (SALEBOT_BOT_USERNAME) is not among the project's "
        f"Telegram channels (found: {found})"
    )


async def _proof(settings: Settings) -> Outcome:
    missing = {"email_code": "no SMTP_HOST", "operator": "no OPERATOR_CHAT_ID"}
    skipped = [
        f"{method} ({missing[method]})"
        for method in settings.ownership_proof
        if method not in settings.proof_methods
    ]
    offered = ", ".join(settings.proof_methods)
    return True, f"offered: {offered}" + (f"; not offered: {', '.join(skipped)}" if skipped else "")


async def _smtp(settings: Settings, letters: LetterSender) -> Outcome:
    where = f"{settings.smtp_host}:{settings.smtp_port_or_default} ({settings.smtp_security})"
    try:
        await letters.check()
    except MailError as error:
        return False, f"{where}: {type(error).__name__}: {error}"
    login = "login accepted" if settings.smtp_username else "no login"
    return True, f"{where}: connected, {login}; nothing sent"
