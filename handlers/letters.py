"""The letter that carries a one-time code (``services.linking.ownership`` sends it)."""

from __future__ import annotations

from handlers.texts import Texts
from services.linking.ownership import CODE_VALID_SECONDS, LetterRenderer


def letter_renderer(texts: Texts, school_name: str | None) -> LetterRenderer:
    """The code letter in the bot's language, signed with SCHOOL_NAME."""
    school = school_name or texts.render_plain("school_default")
    minutes = CODE_VALID_SECONDS // 60

    def render(code: str) -> tuple[str, str]:
        values = {"school": school, "code": code, "minutes": minutes}
        subject = texts.render_plain("code_letter_subject", **values)
        return subject, texts.render_plain("code_letter_body", **values)

    return render
