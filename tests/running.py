"""Running the real run modes in the test process (``serving``) or as ``python -m bot`` in a
child process (``BotProcess``), against the stand-ins of ``tests.conftest``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bot.app import App
from bot.polling import PollingRunner
from bot.serve import Runner
from bot.settings import Settings
from bot.webhook import WebhookRunner
from tests.conftest import GETCOURSE_KEY, SALEBOT_KEY, TOKEN, WEBHOOK_SECRET, StandIns

SECRETS = (TOKEN, TOKEN.partition(":")[2], GETCOURSE_KEY, SALEBOT_KEY, WEBHOOK_SECRET)


@contextlib.asynccontextmanager
async def serving(standins: StandIns, settings: Settings) -> AsyncIterator[App]:
    """The app in its MODE, taking updates; stopped gracefully on the way out."""
    async with App.running(settings) as app:
        runner: Runner = PollingRunner(app) if settings.mode == "polling" else WebhookRunner(app)
        await runner.start()
        try:
            if settings.mode == "polling":
                await standins.telegram.wait_for_poll()
            yield app
        finally:
            await runner.stop()


async def get(listen: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://{listen}", timeout=5) as http:
        return await http.get(path)


def process_env(standins: StandIns, **settings: str) -> dict[str, str]:
    """The environment for ``python -m bot``: the stand-ins' settings, nothing inherited that
    could configure the bot; a child process polls GetCourse less eagerly and waits longer."""
    return standins.env(
        **{"GETCOURSE_POLL_FIRST_DELAY": "0.05", "GETCOURSE_LOOKUP_TIMEOUT": "10", **settings}
    )


class BotProcess:
    """``python -m bot`` in a child process; its log (stderr) collected line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stderr_lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, env: dict[str, str], *, cwd: Path) -> AsyncIterator[BotProcess]:
        """The child process, killed on the way out if still alive (a failed test must not
        leave a bot polling the next test's stand-ins)."""
        # cwd without a .env file, so only ``env`` configures the bot.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            env=env,
            cwd=cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        bot = cls(process)
        try:
            yield bot
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.stderr_lines.append(line.decode().rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.stderr_lines)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def exit_code(self, within: float = 30.0) -> int:
        try:
            async with asyncio.timeout(within):
                code = await self.process.wait()
                await self._reader
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"the bot did not exit within {within}s:\n{self.stderr}") from None
        return code
