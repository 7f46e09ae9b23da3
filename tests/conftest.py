"""Fixtures shared by the whole suite: one database and one Ray runtime per run (per xdist
worker when `make test` runs the suite on two workers)."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.ray_runtime",
    "tests.fixtures.system",
]

# Tests that each run whole systems (several processes, their own Ray and PostgreSQL) and load
# the machine for a minute or more: under `--dist loadgroup` they run one after another on one
# worker, so two of them never share the two cores (at once they pushed the load average past
# 20, and Ray's raylet missed its 30 s start).
HEAVY = (
    "tests/faults/",
    "tests/cluster/",
    "tests/e2e/test_system.py",
    "tests/e2e/test_quick_bench.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path.startswith(HEAVY):
            item.add_marker(pytest.mark.xdist_group("heavy"))
