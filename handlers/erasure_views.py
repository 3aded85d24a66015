"""What an erasure removed, told to the person who asked (``/forget``) or to an operator."""

from __future__ import annotations

from handlers.texts import Texts
from services.privacy.erasure import Erased


def erased(texts: Texts, outcome: Erased, *, title: str) -> str:
    """What an erasure removed, for the person (``forget_done``) or an operator."""
    if outcome.nothing:
        return texts.render(f"{title}_nothing", telegram_id=outcome.telegram_id)
    lines = [texts.render(title, telegram_id=outcome.telegram_id)]
    lines += [
        texts.render(f"erased_{held}", count=count) for held, count in outcome.removed.items()
    ]
    if outcome.salebot_blanked:
        lines.append(texts.render("erased_salebot"))
    return "\n".join(lines)
