"""The quick flash sale of the bench as a correctness check: no timing is asserted.

It runs `boxoffice bench --quick --scenario flash-sale` against a system of its own and checks
the seat audit: sold == capacity per the ledger, the API, and the responses; no 5xx.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.cli import main as bench_main


def run_quick_bench(scenario: str, out: Path, **tunables: int) -> int:
    """`boxoffice bench --quick` of one scenario against a system of its own, in one load
    process with no progress bar, writing to `out`; `tunables` by option name (`seats=60`
    is `--seats 60`). Returns the exit status."""
    argv = ["--quick", "--scenario", scenario, "--targets", "system"]
    for name, value in tunables.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    return bench_main([*argv, "--procs", "1", "--no-progress", "--output", str(out)])


def test_quick_flash_sale_sells_exactly_the_capacity(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    seats = 60

    status = run_quick_bench("flash-sale", out, buyers=150, seats=seats, flash_concurrency=48)

    report = json.loads((out / "results.json").read_text())
    (flash,) = report["scenarios"]
    assert flash["name"] == "flash-sale"
    audit = flash["audit"]["system"]
    assert audit["capacity"] == seats
    for count in (
        "sold_per_ledger_rows",
        "sold_per_ledger_counter",
        "sold_per_orders_api",
        "sold_per_api",
        "sold_per_responses",
    ):
        assert audit.get(count) == seats, (count, audit)
    assert audit["holds_ok"] == audit["orders_ok"] == seats  # one seat each: no hold lost
    assert audit["server_errors"] == 0
    assert audit["lost_count"] == 0
    assert audit["duplicate_order_ids"] == 0
    assert audit["available_per_api"] == 0
    assert flash["passed"] is True
    assert status == 0
    assert (out / "bench.png").stat().st_size > 0


def test_quick_waiting_room_sells_exactly_the_capacity_in_queue_order(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    seats = 40

    status = run_quick_bench(
        "waiting-room",
        out,
        buyers=10,
        hold_clients=1,
        sockets=1,
        queue_buyers=120,
        queue_sockets=20,
        queue_rate=60,
        queue_seats=seats,
    )

    report = json.loads((out / "results.json").read_text())
    (room,) = report["scenarios"]
    assert room["name"] == "waiting-room"
    audit = room["audit"]["system"]
    assert audit["capacity"] == seats
    assert audit["sold_per_ledger_rows"] == audit["sold_per_ledger_counter"] == seats
    assert audit["inversions"] == 0
    assert audit["server_errors"] == 0
    # Every seat went to a buyer the queue admitted (the ledger's queue entries say so).
    assert audit["buyers_not_admitted"] == []
    rows = {row["metric"]: row for row in room["rows"]}
    assert rows["join errors"]["values"]["system"] == 0
    assert rows["queue-status staleness p99"]["values"]["system"] is not None
    assert rows["admission → first hold p99"]["values"]["system"] is not None
    assert room["passed"] is True
    assert status == 0
