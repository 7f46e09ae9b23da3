"""The README's figures are a committed run's: every row of the table in
docs/bench/results.md (written by `boxoffice bench`) stands in README.md as it is."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ")]


def test_the_readme_table_is_the_committed_results_table() -> None:
    committed = table_rows((ROOT / "docs" / "bench" / "results.md").read_text())
    readme = set(table_rows((ROOT / "README.md").read_text()))
    assert len(committed) > 10
    assert [row for row in committed if row not in readme] == []
