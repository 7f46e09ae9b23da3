"""The report's arithmetic: medians of several runs, and what a reader is told up front."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchOptions, settings_not_default, system_env
from benchmarks.report import combine, markdown


def run_file(directory: Path, system: float, ceiling: float, met: bool, passed: bool) -> Path:
    directory.mkdir(parents=True)
    row: dict[str, Any] = {
        "metric": "holds/s (2xx)",
        "unit": "1/s",
        "values": {"system": system, "ceiling": ceiling},
        "better": "higher",
        "goal": ">= 0.8x ceiling",
        "met": met,
        "vs_ceiling": system / ceiling,
        "vs_baseline": None,
        "vs_baseline_nosync": None,
    }
    machine = {
        "date": "2026-11-28T10:00:00",
        "duration_s": 60.0,
        "cores": 2,
        "cpu": "test",
        "memory_gb": 1.0,
        "python": "3.11",
        "settings_not_default": {"LOCK_TTL_SECONDS": "30 (default 300)"},
    }
    scenario = {
        "name": "hot-hold",
        "passed": passed,
        "rows": [row],
        "audit": None,
        "notes": [],
        "series": {},
    }
    results = {"machine": machine, "passed": passed, "scenarios": [scenario]}
    (directory / "results.json").write_text(json.dumps(results))
    return directory


def test_runs_combine_into_medians_of_figures_and_of_ratios(tmp_path: Path) -> None:
    runs = [
        run_file(tmp_path / "run-1", system=900.0, ceiling=1000.0, met=True, passed=True),
        run_file(tmp_path / "run-2", system=500.0, ceiling=1000.0, met=False, passed=True),
        # A slow machine moment: both slower, the ratio the same as the first run's.
        run_file(tmp_path / "run-3", system=450.0, ceiling=500.0, met=True, passed=False),
    ]

    results, meta = combine(tmp_path, runs)

    (hot,) = results
    (row,) = hot.rows
    assert row.values == {"system": 500.0, "ceiling": 1000.0}
    assert row.spread == {"system": (450.0, 900.0), "ceiling": (500.0, 1000.0)}
    # The median of the ratios (0.9, 0.5, 0.9), not the ratio of the medians (0.5).
    assert row.ratios is not None and row.ratios["ceiling"] == 0.9
    assert row.met is True  # two of three runs met the goal
    assert hot.passed is False  # an audit that failed once fails the combination
    assert meta["runs"] == 3 and meta["duration_s"] == 180.0
    table = (tmp_path / "results.md").read_text()
    assert "median of 3 runs" in table
    assert "| hot-hold | holds/s (2xx) | 500 (450 to 900) | 1,000 (500 to 1,000) | 0.90x |" in table
    assert "LOCK_TTL_SECONDS=30 (default 300)" in table


def test_the_bench_names_every_setting_it_changes(tmp_path: Path) -> None:
    changed = settings_not_default(system_env(BenchOptions(scenarios=()), tmp_path, ""))
    assert changed["LOCK_TTL_SECONDS"] == "30.0 (default 300)"
    assert changed["ACTOR_IDLE_SECONDS"] == "5.0 (default 60)"
    assert changed["BCRYPT_ROUNDS"] == "4 (default 12)"
    assert changed["MAX_LIVE_HOLDS_PER_USER"] == "1000000 (default 20)"


def test_one_run_says_so_and_explains_its_references() -> None:
    meta = {
        "date": "d",
        "cores": 2,
        "cpu": "c",
        "memory_gb": 1,
        "python": "3",
        "duration_s": 1,
        "settings_not_default": {},
    }
    text = markdown([], meta)
    assert "(one run)" in text
    assert "synchronous_commit=off" in text
