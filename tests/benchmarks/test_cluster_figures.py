"""The cluster scenario's figures: rates and CPU per hold from one run's samples, CPU charged
to the part of the system that spent it, and the issue's ratios from the runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

# First: benchmarks.scenarios imports the scenario modules once its helpers exist.
from benchmarks.scenarios import SCENARIOS

# isort: split
from benchmarks.cluster import SPREAD, RunFigures, cpu_by_part, figures, rows
from benchmarks.harness import CpuMeter


def sample(at: float, status: int = 200, ms: float = 10.0) -> tuple[str, float, float, int, int]:
    return ("reserve", at, ms / 1000, status, 0)


def run(holds_per_second: float) -> RunFigures:
    return RunFigures(holds_per_second, 50.0, 0.3, {"gateways": 0.1, "feed hub": 0.05}, 0, 0.2)


def test_rates_and_cost_count_only_answered_holds() -> None:
    meter = CpuMeter([])
    meter.start, meter.last = {(1, 0.0): 1.0}, {(1, 0.0): 1.5}  # half a CPU second
    # 100 holds answered over one second, and 10 that failed.
    samples = [sample(i / 100) for i in range(101)] + [sample(0.5, 503)] * 10
    got = figures(samples, meter, 0.3)
    assert 95 <= got.holds_per_second <= 105
    assert round(got.cpu_ms_per_hold, 2) == round(500 / 101, 2)
    assert got.errors == 10
    assert got.client_cores == 0.3


def test_cpu_is_charged_to_the_part_that_spent_it() -> None:
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "CategoryActor"]
    )
    try:
        me, other = psutil.Process(os.getpid()), psutil.Process(sleeper.pid)
        # Popen returns once the child has begun its exec (vfork), which can be before the
        # kernel has set its new arguments: /proc/PID/cmdline reads empty until then.
        deadline = time.monotonic() + 10
        while "CategoryActor" not in other.cmdline():
            assert time.monotonic() < deadline, "the sleeper never showed its arguments"
            time.sleep(0.01)
        meter = CpuMeter([])
        mine, its = (me.pid, me.create_time()), (other.pid, other.create_time())
        gone = (2**22 + 1, 0.0)  # no such process
        meter.start = {mine: 1.0, its: 2.0, gone: 0.0}
        meter.last = {mine: 1.25, its: 2.5, gone: 0.75}
        parts = cpu_by_part(meter)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert parts["category actors"] == 0.5
    assert parts["exited"] == 0.75
    # pytest's own process names none of the parts: Ray's catch-all takes it.
    assert parts["Ray (raylet, GCS, other)"] == 0.25


def test_ratios_compare_spread_with_hot_and_two_gateways_with_one() -> None:
    runs = {(1, 1): run(4000), (1, SPREAD): run(2000), (2, 1): run(3000), (2, SPREAD): run(1500)}
    table = {row.metric: row.values["system"] for row in rows(runs)}
    assert table["spread ÷ hot holds/s, 1 gateway"] == 0.5
    assert table["spread ÷ hot holds/s, 2 gateways"] == 0.5
    assert table["2 gateways ÷ 1 holds/s, 1 hot category"] == 0.75
    assert table[f"2 gateways ÷ 1 holds/s, spread over {SPREAD}"] == 0.75
    assert table["server + PostgreSQL CPU per hold, 1 gateway, 1 hot category"] == 300  # µs
    assert table["  of which feed hub, 1 gateway, 1 hot category"] == 50


def test_the_scenario_is_registered() -> None:
    assert SCENARIOS["cluster"].__module__ == "benchmarks.cluster"


def test_a_missing_run_leaves_its_ratio_empty() -> None:
    table = {row.metric: row.values["system"] for row in rows({(1, 1): run(4000)})}
    assert table["spread ÷ hot holds/s, 1 gateway"] is None
