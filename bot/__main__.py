"""``python -m bot [run | check | sandbox | sync [--full]]``: run the bot in MODE, check its
settings and connections, try it against local stand-ins, or fill the local GetCourse
directory."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from bot.log_setup import configure_logging
from bot.settings import Settings, SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "check", "sandbox", "sync"],
        help="run: the bot in MODE (default); check: settings, Telegram, GetCourse and Salebot; "
        "sandbox: chat with it against local stand-ins; sync: update the local GetCourse "
        "directory (new registrations)",
    )
    parser.add_argument(
        "--full", action="store_true", help="sync: every user, by created_at windows"
    )
    args = parser.parse_args(argv)
    if args.command == "sync":
        return sync(full=args.full)
    if args.command == "sandbox":
        from bot.sandbox_cli import run_sandbox

        return asyncio.run(run_sandbox())
    if args.command == "check":
        return check()
    return run()


def run() -> int:
    settings = _configured(report=lambda error: print(error, file=sys.stderr))
    if settings is None:
        return 2
    from bot.serve import serve

    return asyncio.run(serve(settings))


def sync(full: bool) -> int:
    settings = _configured(report=_report_check_line)
    if settings is None:
        return 2
    from bot.sync_cli import run_sync

    return asyncio.run(run_sync(settings, full))


def check() -> int:
    settings = _configured(report=_report_check_line)
    if settings is None:
        return 2
    from bot.check import run_check

    return asyncio.run(run_check(settings))


def _configured(report: Callable[[SettingsError], None]) -> Settings | None:
    """Settings with logging set up from them, or ``None`` after reporting what is wrong."""
    try:
        settings = load_settings()
    except SettingsError as error:
        report(error)
        return None
    configure_logging(settings.log_level, settings.log_format, settings.secrets())
    return settings


def _report_check_line(error: SettingsError) -> None:
    print(f"FAIL  settings   {error}")


if __name__ == "__main__":
    sys.exit(main())
