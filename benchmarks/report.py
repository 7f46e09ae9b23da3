"""What a person reads after a bench run: the terminal table, results.json and the picture.

Every figure appears in absolute units and, where both exist, as a ratio to the ceiling and to
the PostgreSQL baseline of the same run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from benchmarks.harness import BenchOptions
    from benchmarks.scenarios import Row, ScenarioResult

console = Console()
if not console.is_terminal:
    console = Console(width=150)


def make_progress(enabled: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
        transient=True,
    )


def ratio(row: Row, other: str) -> float | None:
    system, base = row.values.get("system"), row.values.get(other)
    if not row.better or system is None or base is None or base == 0:
        return None
    return system / base


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.1f}" if value < 100 else f"{value:.0f}"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.2f}"


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def one_line(result: ScenarioResult) -> str:
    head = next((r for r in result.rows if r.values.get("system") is not None), None)
    status = "[green]ok[/]" if result.passed else "[red]FAILED[/]"
    figure = f"{head.metric} {_fmt(head.values['system'], head.unit)} {head.unit}" if head else ""
    return f"{status} {result.name}: {figure}"


def machine(started: float, options: BenchOptions) -> dict[str, Any]:
    freq = psutil.cpu_freq()
    return {
        "date": datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cpu_mhz": round(freq.current) if freq else None,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "options": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in dataclasses.asdict(options).items()
        },
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def to_json(results: Sequence[ScenarioResult], meta: dict[str, Any]) -> dict[str, Any]:
    scenarios = []
    for result in results:
        rows = [
            {
                **dataclasses.asdict(row),
                "vs_ceiling": ratio(row, "ceiling"),
                "vs_baseline": ratio(row, "baseline"),
            }
            for row in result.rows
        ]
        scenarios.append(
            {
                "name": result.name,
                "passed": result.passed,
                "rows": rows,
                "audit": result.audit,
                "notes": result.notes,
                "series": result.series,
            }
        )
    return {"machine": meta, "passed": all(r.passed for r in results), "scenarios": scenarios}


def write(out_dir: Path, results: Sequence[ScenarioResult], meta: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(to_json(results, meta), indent=2))
    (out_dir / "results.md").write_text(markdown(results, meta) + "\n")
    if results:
        plot(out_dir / "bench.png", results, meta)


def print_table(results: Sequence[ScenarioResult], meta: dict[str, Any], out_dir: Path) -> None:
    table = Table(title=f"Boxoffice bench · {meta['date']} · {meta['cores']} cores · {meta['cpu']}")
    for column in ("scenario", "metric", "system", "ceiling", "baseline", "vs ceiling",
                   "vs baseline", "goal"):  # fmt: skip
        justify = "left" if column in ("scenario", "metric", "goal") else "right"
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for result in results:
        for i, row in enumerate(result.rows):
            goal = row.goal
            if row.met is not None:
                goal = (
                    f"{goal} [{'green' if row.met else 'red'}]{'met' if row.met else 'missed'}[/]"
                )
            unit = f" ({row.unit})" if row.unit and row.unit != "1/s" else ""
            table.add_row(
                (result.name + ("" if result.passed else " [red]FAILED[/]")) if i == 0 else "",
                row.metric + unit,
                _fmt(row.values.get("system"), row.unit),
                _fmt(row.values.get("ceiling"), row.unit),
                _fmt(row.values.get("baseline"), row.unit),
                _fmt_ratio(ratio(row, "ceiling")),
                _fmt_ratio(ratio(row, "baseline")),
                goal,
            )
        table.add_section()
    console.print(table)
    for result in results:
        for note in result.notes:
            console.print(f"[yellow]{result.name}[/]: {note}")
        if result.audit and not result.passed:
            console.print(f"[red]{result.name} audit failed[/]: {json.dumps(result.audit)}")
    console.print(f"results: {out_dir / 'results.json'}  picture: {out_dir / 'bench.png'}")


def markdown(results: Sequence[ScenarioResult], meta: dict[str, Any]) -> str:
    """The same table as Markdown, for the README's results section."""
    lines = [
        f"Run {meta['date']} on {meta['cores']} cores ({meta['cpu']}), {meta['memory_gb']} GB, "
        f"Python {meta['python']}, {meta['duration_s']} s in all.",
        "",
        "| scenario | metric | system | ceiling | baseline | vs ceiling | vs baseline | goal |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        for row in result.rows:
            goal = row.goal + ("" if row.met is None else (" ✅" if row.met else " ❌"))
            unit = f" ({row.unit})" if row.unit and row.unit != "1/s" else ""
            lines.append(
                f"| {result.name} | {row.metric}{unit} | {_fmt(row.values.get('system'), row.unit)}"
                f" | {_fmt(row.values.get('ceiling'), row.unit)}"
                f" | {_fmt(row.values.get('baseline'), row.unit)}"
                f" | {_fmt_ratio(ratio(row, 'ceiling'))} | {_fmt_ratio(ratio(row, 'baseline'))}"
                f" | {goal} |"
            )
    return "\n".join(lines)


COLORS = {"system": "tab:blue", "ceiling": "tab:green", "baseline": "tab:orange"}


def plot(path: Path, results: Sequence[ScenarioResult], meta: dict[str, Any]) -> None:
    """Per scenario: answers per second, and latency p50/p95/p99, over time, per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in results if any(r.series.get(t) for t in COLORS)]
    if not shown:
        return
    fig, axes = plt.subplots(len(shown), 2, figsize=(13, 3.2 * len(shown)), squeeze=False)
    for (ax_rate, ax_lat), result in zip(axes, shown, strict=True):
        for target, color in COLORS.items():
            bins = result.series.get(target) or []
            if not bins:
                continue
            t = [b["t"] for b in bins]
            ax_rate.plot(t, [b["rps"] for b in bins], color=color, label=target)
            ax_lat.plot(t, [b["p50"] for b in bins], color=color, linestyle=":", linewidth=1)
            ax_lat.plot(t, [b["p95"] for b in bins], color=color, linestyle="--", linewidth=1)
            ax_lat.plot(t, [b["p99"] for b in bins], color=color, label=f"{target} p99")
        actors = result.series.get("actors") or []
        if actors:
            twin = ax_rate.twinx()
            twin.plot([a["t"] for a in actors], [a["actors"] for a in actors], color="tab:red",
                      linewidth=1, label="live actors")  # fmt: skip
            twin.set_ylabel("live actors", color="tab:red")
        ax_rate.set_title(f"{result.name}: answers per second")
        ax_rate.set_xlabel("s")
        ax_rate.legend(loc="upper right", fontsize="small")
        ax_lat.set_title(f"{result.name}: latency p50 (dotted), p95 (dashed), p99 (solid)")
        ax_lat.set_xlabel("s")
        ax_lat.set_ylabel("ms")
        ax_lat.set_yscale("log")
        ax_lat.legend(loc="upper right", fontsize="small")
    fig.suptitle(f"Boxoffice bench, {meta['date']}, {meta['cores']} cores, {meta['cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
