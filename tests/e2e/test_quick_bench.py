"""The quick flash sale of the bench as a correctness check: no timing is asserted.

It runs `boxoffice bench --quick --scenario flash-sale` against a system of its own and checks
the seat audit: sold == capacity per the ledger, the API, and the responses; no 5xx.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.cli import main as bench_main


def test_quick_flash_sale_sells_exactly_the_capacity(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    seats = 60

    status = bench_main(
        [
            "--quick",
            "--scenario",
            "flash-sale",
            "--targets",
            "system",
            "--buyers",
            "150",
            "--seats",
            str(seats),
            "--flash-concurrency",
            "48",
            "--procs",
            "1",
            "--no-progress",
            "--output",
            str(out),
        ]
    )

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

    status = bench_main(
        [
            "--quick",
            "--scenario",
            "waiting-room",
            "--targets",
            "system",
            "--buyers",
            "10",
            "--hold-clients",
            "1",
            "--sockets",
            "1",
            "--queue-buyers",
            "120",
            "--queue-sockets",
            "20",
            "--queue-rate",
            "60",
            "--queue-seats",
            str(seats),
            "--procs",
            "1",
            "--no-progress",
            "--output",
            str(out),
        ]
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
