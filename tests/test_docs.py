"""The README is a first screen, and every relative link in it and in ``docs/`` leads somewhere.

A link's path must name a file or folder of the repository, resolved from the page that holds
it; a ``#anchor`` must name a heading of the page it points to, slugged as GitHub does
(lowercase, punctuation dropped, spaces to ``-``, a repeated heading numbered ``-1``, ``-2``).
Links inside code (fenced blocks, inline spans) are not links, and neither are URLs.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_LINES = 200

FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(text: str) -> tuple[str, list[str]]:
    """The page without fenced code blocks, and its headings (outside code) in order."""
    kept, headings, fenced = [], [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if fenced:
            continue
        kept.append(line)
        heading = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            headings.append(heading.group(1))
    return "\n".join(kept), headings


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before duplicates are numbered)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor GitHub makes for ``page``'s headings."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in _prose(page.read_text())[1]:
        base = slug(heading)
        found.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def links(page: Path) -> list[str]:
    """The targets of the page's inline links and images, code spans left out."""
    prose = re.sub(r"`[^`]*`", "", _prose(page.read_text())[0])
    return LINK.findall(prose)


def test_slug_follows_github():
    assert slug("Reading results in `mlflow ui`") == "reading-results-in-mlflow-ui"
    assert slug("Configuration (`conf/`)") == "configuration-conf"
    assert slug("More datasets: Fashion-MNIST, MNIST-1D") == "more-datasets-fashion-mnist-mnist-1d"
    assert slug("Same seed, same bits (`conf/numerics/`)") == "same-seed-same-bits-confnumerics"
    assert slug("`train.record_examples`") == "trainrecord_examples"


def test_the_docs_are_there():
    assert DOCS, "docs/ holds the reference, one page per topic"
    linked = {(README.parent / target.split("#")[0]).resolve() for target in links(README)}
    assert not [page.name for page in DOCS if page.resolve() not in linked], "link it in README"


def test_the_readme_fits_a_first_screen():
    n = len(README.read_text().splitlines())
    assert n < MAX_README_LINES, f"README.md has {n} lines; the reference belongs in docs/"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        if SCHEME.match(target):
            continue  # a URL: not this test's business
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists() or not resolved.is_relative_to(ROOT):
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)
