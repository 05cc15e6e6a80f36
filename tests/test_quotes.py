"""Every number a README quotes is its committed table's (experiments/quotes.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("quotes", ROOT / "experiments" / "quotes.py")
quotes = sys.modules["quotes"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quotes)


def test_every_quoted_number_is_its_tables():
    assert quotes.check() == []


def test_the_study_readmes_with_seeds_quote_their_tables():
    for study in ("examples", "mnist1d", "double_descent"):
        found = quotes.quotes(ROOT / "experiments" / study / "README.md")
        assert len(found) >= 3, f"experiments/{study}/README.md quotes {len(found)} numbers"


def _readme(folder: Path, text: str) -> Path:
    (folder / "table.csv").write_text(
        "p,H,acc,acc_mean\n0.0,[12],0.956 ± 0.002 (5),0.95641\n0.2,[12],0.878 ± 0.012 (5),0.878\n"
    )
    readme = folder / "README.md"
    readme.write_text(text)
    return readme


def test_a_quote_that_differs_from_its_table_is_named_with_both_texts(tmp_path):
    readme = _readme(
        tmp_path,
        "ok <!-- q table.csv p=0.2 acc -->0.878 ± 0.012 (5)<!-- /q -->\n"
        "stale <!-- q table.csv p=0 acc -->0.93 ± 0.02 (5)<!-- /q -->\n",
    )
    (problem,) = quotes.check([readme])
    assert ":2: quotes '0.93 ± 0.02 (5)'" in problem and "'0.956 ± 0.002 (5)'" in problem


def test_write_puts_the_tables_text_and_formats_numbers(tmp_path):
    readme = _readme(tmp_path, "<!-- q table.csv p=0.0 H=[12] acc_mean:.3f -->?<!-- /q -->")
    assert quotes.write([readme]) == 1
    assert readme.read_text() == "<!-- q table.csv p=0.0 H=[12] acc_mean:.3f -->0.956<!-- /q -->"
    assert quotes.check([readme]) == []


@pytest.mark.parametrize(
    "spec, says",
    [
        ("table.csv acc", "picks 2 rows"),
        ("table.csv p=0.5 acc", "picks 0 rows"),
        ("table.csv q=1 acc", "no column 'q' to filter on"),
        ("table.csv p=0 loss", "no column 'loss'"),
        ("gone.csv p=0 acc", "no table gone.csv"),
    ],
)
def test_a_quote_that_cannot_be_read_is_a_problem_and_writes_nothing(tmp_path, spec, says):
    text = f"<!-- q table.csv p=0 acc -->old<!-- /q --> <!-- q {spec} -->x<!-- /q -->"
    readme = _readme(tmp_path, text)
    (problem,) = [p for p in quotes.check([readme]) if says in p]
    with pytest.raises(quotes.QuoteError, match=says):
        quotes.write([readme])
    assert readme.read_text() == text
