"""The README and the guides in docs/: every relative link resolves, and the README stays short."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 200
DOCUMENTS = sorted([README, *(ROOT / "docs").glob("*.md")])

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`+[^`]*`+")
# [text](target) and ![alt](target), with an optional "title"; targets have no spaces.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans blanked out."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower-cased, punctuation removed
    (letters, digits, ``_`` and ``-`` stay), spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[`*]|(?<!\w)_|_(?!\w)", "", text)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every heading anchor of a Markdown file; repeated headings get -1, -2… as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def links(path: Path) -> list[str]:
    targets = []
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        targets += LINK.findall(INLINE_CODE.sub("``", line))
    return targets


def broken_links(path: Path) -> list[str]:
    problems = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # https:, mailto: …: not ours to check offline
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / unquote(file_part)).resolve() if file_part else path
        shown = os.path.relpath(linked, path.parent)
        if not linked.exists():
            problems.append(f"{target}: no file {shown}")
        elif anchor and linked.suffix == ".md" and unquote(anchor) not in anchors(linked):
            problems.append(f"{target}: no heading #{anchor} in {shown}")
    return problems


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(document: Path) -> None:
    assert broken_links(document) == []


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES


def test_readme_links_every_guide() -> None:
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in links(README)}
    guides = set((ROOT / "docs").glob("*.md"))
    assert guides - linked == set()


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Run modes", "run-modes"),
        ("Syncing from the command line", "syncing-from-the-command-line"),
        ('GetCourse trouble is never "not found"', "getcourse-trouble-is-never-not-found"),
        ("`python -m bot sync`", "python--m-bot-sync"),
        ("Figures, export and audit", "figures-export-and-audit"),
        ("Как найти ID чата", "как-найти-id-чата"),
        ("snake_case and **bold**", "snake_case-and-bold"),
    ],
)
def test_slugs_follow_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_a_missing_file_and_a_missing_heading_are_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## Real heading\n", encoding="utf-8")
    page.write_text(
        "# Page\n\n[ok](other.md#real-heading) [ok](#page) [web](https://example.com/x)\n"
        "[gone](missing.md) [no heading](other.md#nowhere) [here](#nowhere)\n"
        "`[in code](missing-in-code.md)`\n\n```\n[in a fence](missing-in-fence.md)\n```\n",
        encoding="utf-8",
    )
    problems = broken_links(page)
    assert len(problems) == 3, problems
    assert problems[0].startswith("missing.md: no file")
    assert problems[1] == "other.md#nowhere: no heading #nowhere in other.md"
    assert problems[2] == "#nowhere: no heading #nowhere in page.md"
