"""Command line: ``python -m bot`` or ``gc-salebot-bot``, with a subcommand (``run`` when none).

Exit codes: see ``EPILOG`` (what ``--help`` prints) and docs/deployment.md."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The rest is imported once a command runs: until then Ctrl-C ends the process at once, and
# quietly (see ``cli``), where a KeyboardInterrupt amid imports would print a page of traceback.
if TYPE_CHECKING:
    from bot.settings import Settings

DISTRIBUTION = "gc-salebot-link-bot"
EXIT_FAILED = 1
EXIT_SETTINGS = 2
EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C

DESCRIPTION = """\
Telegram bot that links an online school's GetCourse students with their Salebot chat clients.
Settings come from the environment and a .env file (see .env.example)."""

EPILOG = """\
exit codes: 0 done; 1 a check failed, or the bot could not start or had to stop;
2 a setting is missing or malformed; 3 a sync stopped early to spare the export budget;
130 Ctrl-C before the command was under way"""


def cli() -> int:
    """The console script and ``python -m bot``: Ctrl-C ends start-up quietly; once a command's
    event loop runs, it stops that command gracefully instead."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    return main()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:  # Ctrl-C before the bot took SIGINT over, or in the sandbox
        print()
        return 0 if args.command == "sandbox" else EXIT_INTERRUPTED


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command or "run"
    env_file: Path | None = getattr(args, "env_file", None)  # before or after the command
    if command == "sandbox":
        from bot.sandbox_cli import run_sandbox

        return _run_loop(run_sandbox(args.lang))
    if command == "check":
        return check(env_file)
    if command == "sync":
        return sync(env_file, full=args.full)
    return run(env_file)


def _parser() -> argparse.ArgumentParser:
    env_file = argparse.ArgumentParser(add_help=False)
    env_file.add_argument(
        "--env-file",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="read settings from this file instead of ./.env (the environment still wins)",
    )
    parser = argparse.ArgumentParser(
        prog="gc-salebot-bot",
        description=DESCRIPTION,
        epilog=EPILOG,
        parents=[env_file],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    commands.add_parser(
        "run",
        parents=[env_file],
        help="run the bot in MODE (the default command)",
        description="Run the bot: long polling or webhook, as MODE says, until SIGTERM or "
        "Ctrl-C, then stop gracefully within SHUTDOWN_TIMEOUT.",
    )
    commands.add_parser(
        "check",
        parents=[env_file],
        help="validate the settings and reach Telegram, GetCourse and Salebot",
        description="Validate the settings, then make one cheap call to Telegram (getMe), "
        "GetCourse (groups) and Salebot (connected channels); a line per check. Exit 0 when "
        "all pass. Never prints a secret.",
    )
    sync = commands.add_parser(
        "sync",
        parents=[env_file],
        help="fill the local GetCourse directory now (while the bot is stopped)",
        description="Read new registrations (or, with --full, every user) from GetCourse into "
        "the local directory, a line per export. Exit 3 when it stopped early to spare the "
        "export budget: run it again later and it resumes.",
    )
    sync.add_argument(
        "--full", action="store_true", help="every user, not only the new registrations"
    )
    sandbox = commands.add_parser(
        "sandbox",
        help="chat with the bot from the terminal against local stand-ins (no accounts)",
        description="Start stand-ins for Telegram, GetCourse and Salebot on loopback, run the "
        "bot against them and chat with it from the terminal. Type :help inside.",
    )
    sandbox.add_argument(
        "--lang", choices=["ru", "en"], default="ru", help="the bot's language (default ru)"
    )
    return parser


def _version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def run(env_file: Path | None) -> int:
    settings = _configured(env_file, lambda line: print(line, file=sys.stderr))
    if settings is None:
        return EXIT_SETTINGS
    from bot.serve import serve

    return _run_loop(serve(settings))


def sync(env_file: Path | None, full: bool) -> int:
    settings = _configured(env_file, _report_check_line)
    if settings is None:
        return EXIT_SETTINGS
    from bot.sync_cli import run_sync
    from services.errors import StartupError

    try:
        return _run_loop(run_sync(settings, full))
    except StartupError as error:
        print(f"FAIL  {error}")
        return EXIT_FAILED


def check(env_file: Path | None) -> int:
    settings = _configured(env_file, _report_check_line)
    if settings is None:
        return EXIT_SETTINGS
    from bot.check import run_check

    return _run_loop(run_check(settings))


def _run_loop(command: Coroutine[Any, Any, int]) -> int:
    """Run a command's event loop, with Ctrl-C handed to asyncio (it cancels the command)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return asyncio.run(command)


def _configured(env_file: Path | None, report: Callable[[str], None]) -> Settings | None:
    """Settings with logging set up from them, or ``None`` after reporting what is wrong."""
    from bot.log_setup import configure_logging
    from bot.settings import SettingsError, load_settings

    try:
        if env_file is None:
            settings = load_settings()
        elif not env_file.is_file():
            raise SettingsError(f"Configuration error: --env-file {env_file}: no such file")
        else:
            settings = load_settings(_env_file=env_file)
    except SettingsError as error:
        report(str(error))
        return None
    configure_logging(settings.log_level, settings.log_format, settings.secrets())
    return settings


def _report_check_line(line: str) -> None:
    print(f"FAIL  settings   {line}")


if __name__ == "__main__":
    sys.exit(cli())
