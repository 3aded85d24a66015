"""``python -m bot [run | sandbox]``: run the bot in MODE, or try it against local stand-ins."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.log_setup import configure_logging
from bot.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "sandbox"],
        help="run: the bot in MODE (default); sandbox: chat with it against local stand-ins",
    )
    args = parser.parse_args(argv)
    if args.command == "sandbox":
        from bot.sandbox_cli import run_sandbox

        return asyncio.run(run_sandbox())
    return run()


def run() -> int:
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, settings.secrets())
    if settings.mode != "polling":
        print("Configuration error: MODE=webhook is not available yet", file=sys.stderr)
        return 2

    from bot.app import App

    async def polling() -> None:
        async with App.running(settings) as app:
            await app.run_polling()

    asyncio.run(polling())
    return 0


if __name__ == "__main__":
    sys.exit(main())
