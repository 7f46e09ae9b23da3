"""The bench's memory breakdown, on real processes: private memory a process allocates shows in
its USS and under anonymous memory, the totals agree with the kernel's own summary, and a
process that is gone has no footprint."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from benchmarks.memory import ANONYMOUS, footprint, median, titled

HOLDER = """
import sys, time
block = bytearray(64 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1  # touched: resident and private
print("ready", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, "memory-holder"], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    yield process
    process.kill()
    process.wait(10)


def test_private_memory_is_counted_and_named(holder: subprocess.Popen[str]) -> None:
    measured = footprint(holder.pid)
    assert measured is not None
    kernel = psutil.Process(holder.pid).memory_full_info()
    assert measured.rss_kb == kernel.rss // 1024
    assert measured.uss_kb == kernel.uss // 1024
    assert measured.pss_kb <= measured.rss_kb
    # The 64 MB block is private, anonymous, and the largest contributor.
    assert measured.uss_kb >= 64 * 1024
    name, kb = measured.largest(1)[0]
    assert name == ANONYMOUS and kb >= 64 * 1024
    assert "anonymous" in measured.describe(1)


def test_processes_are_found_by_title_and_the_median_is_one_of_them(
    holder: subprocess.Popen[str],
) -> None:
    found = titled([psutil.Process(holder.pid), psutil.Process()], "memory-holder")
    assert len(found) == 1 and found[0].uss_kb >= 64 * 1024
    assert median(found) is found[0]
    assert median([]) is None


def test_a_process_that_is_gone_has_no_footprint() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(10)
    assert footprint(process.pid) is None
