"""`boxoffice bench`: the command line of the load-test harness.

Parses the scenario selection and its parameters, runs the harness, and returns its exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks import report
from benchmarks.harness import BenchOptions, ServiceFailed, default_output, run
from benchmarks.scenarios import SCENARIOS

QUICK = {
    "buyers": 300,
    "seats": 100,
    "flash_concurrency": 64,
    "hold_clients": 64,
    "duration": 3.0,
    "sockets": 100,
    "changes_per_second": 5.0,
    "categories": 500,
    "categories_per_event": 50,
    "hot_set": 8,
    "rotate_every": 1.5,
    "churn_clients": 16,
    "actor_idle": 3.0,
    "actor_confirms": 2000,
    "waiters": 100,
    "waitlist_seats": 30,
    "queue_buyers": 300,
    "queue_sockets": 40,
    "queue_rate": 100,
    "queue_seats": 100,
}


TUNABLES: tuple[tuple[str, type, str], ...] = (
    ("buyers", int, "flash-sale buyers, each with an account"),
    ("seats", int, "flash-sale capacity"),
    ("flash_concurrency", int, "flash-sale buyers in flight at once"),
    ("hold_clients", int, "hot-hold concurrent clients"),
    ("duration", float, "seconds per timed run"),
    ("sockets", int, "fan-out sockets in one event room"),
    ("changes_per_second", float, "fan-out availability changes per second"),
    ("categories", int, "many-categories: how many categories"),
    ("categories_per_event", int, "many-categories: categories per event"),
    ("hot_set", int, "many-categories: hot categories at a time"),
    ("rotate_every", float, "many-categories: seconds before the hot set moves on"),
    ("churn_clients", int, "many-categories: concurrent clients"),
    ("queue_buyers", int, "waiting-room: buyers who join the queue over REST"),
    ("queue_sockets", int, "waiting-room: buyers who join and watch over Socket.IO"),
    ("queue_rate", int, "waiting-room: admitPerSecond"),
    ("queue_seats", int, "waiting-room: capacity"),
    ("procs", int, "load-generator processes"),
    ("actor_callers", int, "actor-ceiling: caller processes feeding the one actor"),
    ("actor_confirms", int, "actor-ceiling: holds confirmed into orders"),
    ("waiters", int, "waitlist: buyers waiting on the sold-out category"),
    ("waitlist_seats", int, "waitlist: seats freed by releases and cancels"),
    ("waitlist_churn", float, "waitlist: seats freed per second"),
    ("decline_every", int, "waitlist: every n-th offered buyer lets the offer expire"),
    ("offer_seconds", float, "waitlist: WAITLIST_OFFER_SECONDS of the bench system"),
    ("lock_ttl", float, "LOCK_TTL_SECONDS of the bench system"),
    ("actor_idle", float, "ACTOR_IDLE_SECONDS of the bench system"),
)


def parser() -> argparse.ArgumentParser:
    defaults = BenchOptions(scenarios=())
    p = argparse.ArgumentParser(
        prog="boxoffice bench",
        description="Load-test Boxoffice beside a JWT no-op ceiling and a PostgreSQL baseline.",
    )
    p.add_argument(
        "--scenario",
        "-s",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (repeatable); default: all, in order",
    )
    p.add_argument("--quick", action="store_true", help="small sizes: finishes in under a minute")
    p.add_argument(
        "--targets",
        default=",".join(defaults.targets),
        help="comma list of system, bare, ceiling, baseline, baseline_nosync (default: all)",
    )
    for name, kind, text in TUNABLES:
        default = getattr(defaults, name)
        p.add_argument(
            "--" + name.replace("_", "-"), type=kind, help=f"{text} (default {default:g})"
        )
    p.add_argument(
        "--socket-transport",
        choices=("websocket", "polling"),
        help="Socket.IO transport of the fan-out clients (default websocket)",
    )
    p.add_argument(
        "--output", "-o", type=Path, help="output directory (default benchmarks/results/<stamp>/)"
    )
    p.add_argument(
        "--runs",
        type=int,
        default=1,
        help="run the whole bench this many times, each on a fresh system, and report the "
        "median of each figure and ratio (default 1)",
    )
    p.add_argument("--keep-data", action="store_true", help="keep the temporary DATA_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def options_from(args: argparse.Namespace) -> BenchOptions:
    values: dict[str, object] = dict(QUICK) if args.quick else {}
    for name in [*(t[0] for t in TUNABLES), "output", "socket_transport"]:
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    unknown = set(targets) - set(BenchOptions(scenarios=()).targets)
    if unknown:
        raise SystemExit(f"unknown targets: {', '.join(sorted(unknown))}")
    return BenchOptions(
        scenarios=tuple(args.scenario or SCENARIOS),
        quick=args.quick,
        targets=targets,
        keep_data=args.keep_data,
        progress=not args.no_progress,
        **values,  # type: ignore[arg-type]
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    options = options_from(args)
    # SIGTERM as Ctrl-C: the harness unwinds and stops the servers it started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if args.runs <= 1:
            return asyncio.run(run(options))
        out_dir = options.output or default_output()
        run_dirs = [out_dir / f"run-{i}" for i in range(1, args.runs + 1)]
        codes = [asyncio.run(run(replace(options, output=d))) for d in run_dirs]
        results, meta = report.combine(out_dir, run_dirs)
        report.print_table(results, meta, out_dir)
        return max(codes)
    except ServiceFailed as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
