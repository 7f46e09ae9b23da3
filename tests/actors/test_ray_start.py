"""A local Ray start that timed out is retried afresh: what that try started is ended first, and
only that (new children of this process running Ray's programs), never a sibling such as
PostgreSQL, nor a Ray runtime that was running before the try (the tests' own)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.remote import child_pids, end_ray_processes_started_since

SLEEPER = "import time; time.sleep(600)"


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
            child.wait(10)


def _ray_like(tmp_path: Path, name: str) -> Path:
    """A module under a `ray` package, as Ray's own helper processes run (log monitor, agent)."""
    module = tmp_path / name / "site-packages" / "ray" / "_private" / "log_monitor.py"
    module.parent.mkdir(parents=True)
    module.write_text(SLEEPER)
    return module


def test_a_failed_start_ends_what_it_started_and_nothing_else(
    tmp_path: Path, children: list[subprocess.Popen[bytes]]
) -> None:
    earlier = subprocess.Popen([sys.executable, str(_ray_like(tmp_path, "earlier"))])
    children.append(earlier)
    before = child_pids()
    started = subprocess.Popen([sys.executable, str(_ray_like(tmp_path, "this-try"))])
    other = subprocess.Popen([sys.executable, "-c", SLEEPER, "postgres"])
    children.extend([started, other])

    assert end_ray_processes_started_since(before) == 1

    assert started.wait(10) is not None
    assert earlier.poll() is None and other.poll() is None
