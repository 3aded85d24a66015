"""What every context builds on: one HTTP client per external system (the database is opened
by ``bot.app.create_services`` itself)."""

from __future__ import annotations

import httpx

from bot import __version__

USER_AGENT = f"gc-salebot-link-bot/{__version__}"


def http_client(base_url: str, timeout: httpx.Timeout) -> httpx.AsyncClient:
    # Redirects are never followed: one would carry the key elsewhere and drop POST bodies.
    return httpx.AsyncClient(
        base_url=base_url,
        follow_redirects=False,
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
    )
