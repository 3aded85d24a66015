"""Shared plumbing for the loopback stand-ins: start/stop an aiohttp app on 127.0.0.1 and
describe scripted misbehaviour ("faults") that a test can queue for a given endpoint."""

from __future__ import annotations

import asyncio
import socket
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour.

    - ``status`` with ``body``: answer with that HTTP status and raw body (``json_body`` wins).
    - ``delay``: sleep this many seconds before answering (a timeout when longer than the
      client's timeout); with no status/body the normal answer follows the delay.
    """

    status: int | None = None
    body: str | None = None
    json_body: Any = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    def has_response(self) -> bool:
        return self.status is not None or self.body is not None or self.json_body is not None

    def response(self) -> web.Response:
        status = self.status if self.status is not None else 200
        if self.json_body is not None:
            return web.json_response(self.json_body, status=status, headers=self.headers)
        return web.Response(status=status, text=self.body or "", headers=self.headers)


class FaultPlan:
    """Per-endpoint queues of faults; ``times=None`` keeps a fault until ``clear``."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[tuple[Fault, int | None]]] = defaultdict(deque)

    def add(self, endpoint: str, fault: Fault, times: int | None = 1) -> None:
        self._queues[endpoint].append((fault, times))

    def clear(self, endpoint: str | None = None) -> None:
        if endpoint is None:
            self._queues.clear()
        else:
            self._queues.pop(endpoint, None)

    def take(self, endpoint: str) -> Fault | None:
        queue = self._queues.get(endpoint)
        if not queue:
            return None
        fault, times = queue[0]
        if times is not None:
            if times <= 1:
                queue.popleft()
            else:
                queue[0] = (fault, times - 1)
        return fault

    async def apply(self, endpoint: str) -> web.Response | None:
        """Sleep for a queued delay and return the fault's response, if it has one."""
        fault = self.take(endpoint)
        if fault is None:
            return None
        if fault.delay:
            await asyncio.sleep(fault.delay)
        return fault.response() if fault.has_response() else None


class LoopbackServer(ABC):
    """An aiohttp application served on a loopback port chosen by the OS."""

    # Whether a request whose client went away stops being handled (aiohttp's default: it runs on).
    cancel_on_disconnect = False

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0

    @abstractmethod
    def build_app(self) -> web.Application: ...

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        # A short shutdown grace: a scripted delay must not hold up stopping the stand-in.
        self._runner = web.AppRunner(
            self.build_app(),
            access_log=None,
            shutdown_timeout=1.0,
            handler_cancellation=self.cancel_on_disconnect,
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self.host, self.port = sock.getsockname()[:2]
        await web.SockSite(self._runner, sock).start()
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
