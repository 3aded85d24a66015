"""The bot's two HTTP listeners (``HTTP_LISTEN``, ``HEALTH_LISTEN``) start and stop alike."""

from __future__ import annotations

import logging
import os

from aiohttp import web

from bot.settings import split_host_port
from services.errors import StartupError

log = logging.getLogger(__name__)


class Listener:
    """An aiohttp application served on a ``host:port`` setting. A port that cannot be taken
    (in use, not allowed) stops start-up with one line naming the setting."""

    def __init__(self, web_app: web.Application, listen: str, setting: str, serves: str) -> None:
        self.web_app = web_app
        self.runner = web.AppRunner(web_app, access_log=None)
        self.listen = listen
        self._setting = setting
        self._serves = serves

    async def start(self) -> None:
        host, port = split_host_port(self.listen)
        await self.runner.setup()
        try:
            await web.TCPSite(self.runner, host, port).start()
        except OSError as error:
            # aiohttp's message repeats the address; the errno's words are enough here.
            reason = os.strerror(error.errno) if error.errno else type(error).__name__
            raise StartupError(
                f"{self._setting} {self.listen}: cannot listen there ({reason})"
            ) from None
        log.info("%s on http://%s/", self._serves, self.listen)

    async def stop(self) -> None:
        if self.runner.server is not None:  # set up, even if listening then failed
            await self.runner.cleanup()
