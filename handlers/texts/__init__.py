"""Every user-visible text, one TOML file per language (``ru`` default, ``en``).

Schools change the wording in the TOML files without touching code; ``Texts.render`` escapes
every value it puts into a template, so nothing a person typed reaches Telegram as markup."""

from __future__ import annotations

import html
import string
import tomllib
from importlib import resources

LANGUAGES = ("ru", "en")


class Texts:
    def __init__(self, templates: dict[str, str]) -> None:
        self._templates = templates

    @classmethod
    def load(cls, language: str) -> Texts:
        if language not in LANGUAGES:
            raise ValueError(f"no texts for language {language!r}")
        source = resources.files(__package__).joinpath(f"{language}.toml").read_text("utf-8")
        templates = tomllib.loads(source)
        return cls({key: str(value) for key, value in templates.items()})

    def keys(self) -> set[str]:
        return set(self._templates)

    def __contains__(self, key: object) -> bool:
        return key in self._templates

    def placeholders(self, key: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(self._templates[key]) if name}

    def render(self, key: str, **values: object) -> str:
        return self._templates[key].format(
            **{name: html.escape(str(value), quote=False) for name, value in values.items()}
        )

    def render_plain(self, key: str, **values: object) -> str:
        """For plain text outside Telegram (a letter): nothing is escaped."""
        return self._templates[key].format(**values)
