"""What a person reads after a bench run: the terminal table, results.json and the picture.

Every figure appears in absolute units and, where both exist, as a ratio to the ceiling and to
the PostgreSQL baseline of the same run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
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


# Columns: the targets, then the system's ratio to each reference.
TARGETS = ("system", "bare", "ceiling", "baseline", "baseline_nosync")
HEADINGS = {
    "system": "system",
    "bare": "bare ASGI ceiling",
    "ceiling": "ceiling",
    "baseline": "baseline",
    "baseline_nosync": "baseline, no fsync wait",
}
REFERENCES = ("bare", "ceiling", "baseline", "baseline_nosync")
LEGEND = (
    "bare ASGI ceiling: a plain ASGI callable that checks the token, parses the body with orjson "
    "and answers, no framework. ceiling: FastAPI + JWT check, answers at once. baseline: the "
    "same routes on PostgreSQL, one "
    "transaction (one statement) per request, each commit waiting for its WAL flush, so an "
    "answered hold survives a crash. baseline, no fsync wait: the same with "
    "synchronous_commit=off, so a crash may lose the last moments of answered holds."
)


def columns(results: Sequence[ScenarioResult]) -> list[str]:
    present = {name for result in results for row in result.rows for name in row.values}
    return [name for name in TARGETS if name in present]


def ratio(row: Row, other: str) -> float | None:
    if row.ratios is not None:
        return row.ratios.get(other)
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
                **{f"vs_{other}": ratio(row, other) for other in REFERENCES},
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
    targets = columns(results)
    references = [name for name in targets if name in REFERENCES]
    table.add_column("scenario")
    table.add_column("metric")
    for name in targets:
        table.add_column(HEADINGS[name], justify="right")
    for name in references:
        table.add_column(f"vs {HEADINGS[name]}", justify="right")
    table.add_column("goal")
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
                *(_fmt(row.values.get(name), row.unit) for name in targets),
                *(_fmt_ratio(ratio(row, name)) for name in references),
                goal,
            )
        table.add_section()
    console.print(table)
    for line in preamble(meta)[1:]:
        console.print(line)
    for result in results:
        for note in result.notes:
            console.print(f"[yellow]{result.name}[/]: {note}")
        if result.audit and not result.passed:
            console.print(f"[red]{result.name} audit failed[/]: {json.dumps(result.audit)}")
    console.print(f"results: {out_dir / 'results.json'}  picture: {out_dir / 'bench.png'}")


def _cell(row: Row, target: str) -> str:
    value = _fmt(row.values.get(target), row.unit)
    spread = (row.spread or {}).get(target)
    if spread is None or spread[0] == spread[1]:
        return value
    return f"{value} ({_fmt(spread[0], row.unit)} to {_fmt(spread[1], row.unit)})"


def combine(out_dir: Path, run_dirs: Sequence[Path]) -> tuple[list[ScenarioResult], dict[str, Any]]:
    """The median of several runs' results.json, written as this directory's results: each
    figure the median (with its range), each ratio the median of the runs' ratios, a goal met
    when most runs met it, a scenario passed only when it passed in every run."""
    from benchmarks.scenarios import Row, ScenarioResult

    runs = [json.loads((d / "results.json").read_text()) for d in run_dirs]
    results: list[ScenarioResult] = []
    for first in runs[0]["scenarios"]:
        name = first["name"]
        same = [s for run in runs for s in run["scenarios"] if s["name"] == name]
        combined = ScenarioResult(name, passed=all(s["passed"] for s in same))
        combined.series = first["series"]
        combined.audit = {"runs": [s["audit"] for s in same]}
        combined.notes = [note for s in same for note in s["notes"]]
        for row in first["rows"]:
            rows = [r for s in same for r in s["rows"] if r["metric"] == row["metric"]]
            values: dict[str, float | None] = {}
            spread: dict[str, tuple[float, float]] = {}
            for target in row["values"]:
                seen = [r["values"].get(target) for r in rows]
                numbers = [v for v in seen if v is not None]
                values[target] = statistics.median(numbers) if numbers else None
                if numbers:
                    spread[target] = (min(numbers), max(numbers))
            ratios: dict[str, float | None] = {}
            for other in REFERENCES:
                seen = [r.get(f"vs_{other}") for r in rows]
                numbers = [v for v in seen if v is not None]
                ratios[other] = statistics.median(numbers) if numbers else None
            verdicts = [r["met"] for r in rows if r["met"] is not None]
            met = sum(verdicts) * 2 > len(verdicts) if verdicts else None
            combined.rows.append(
                Row(
                    row["metric"],
                    row["unit"],
                    values,
                    row["better"],
                    row["goal"],
                    met,
                    spread,
                    ratios,
                )
            )
        results.append(combined)
    meta = dict(runs[0]["machine"])
    meta["runs"] = len(runs)
    meta["duration_s"] = round(sum(run["machine"]["duration_s"] for run in runs), 1)
    write(out_dir, results, meta)
    return results, meta


def preamble(meta: dict[str, Any]) -> list[str]:
    """What a reader needs before the figures: the run, what the references are, and every
    setting of the system that differs from the defaults."""
    runs = meta.get("runs", 1)
    how = f"median of {runs} runs, each on a fresh system" if runs > 1 else "one run"
    lines = [
        f"Run {meta['date']} on {meta['cores']} cores ({meta['cpu']}), {meta['memory_gb']} GB, "
        f"Python {meta['python']}, {meta['duration_s']} s in all ({how}).",
        LEGEND,
    ]
    changed = meta.get("settings_not_default") or {}
    if changed:
        shown = ", ".join(f"{name}={value}" for name, value in changed.items())
        lines.append(f"System settings that differ from the defaults: {shown}.")
    return lines


def markdown(results: Sequence[ScenarioResult], meta: dict[str, Any]) -> str:
    """The same table as Markdown, for the README's results section."""
    targets = columns(results)
    references = [name for name in targets if name in REFERENCES]
    heads = [HEADINGS[n] for n in targets] + [f"vs {HEADINGS[n]}" for n in references]
    lines = [
        *(line + "\n" for line in preamble(meta)),
        "| scenario | metric | " + " | ".join(heads) + " | goal |",
        "| --- | --- | " + " | ".join("---:" for _ in heads) + " | --- |",
    ]
    for result in results:
        for row in result.rows:
            goal = row.goal + ("" if row.met is None else (" ✅" if row.met else " ❌"))
            unit = f" ({row.unit})" if row.unit and row.unit != "1/s" else ""
            cells = [_cell(row, name) for name in targets]
            cells += [_fmt_ratio(ratio(row, name)) for name in references]
            lines.append(
                f"| {result.name} | {row.metric}{unit} | " + " | ".join(cells) + f" | {goal} |"
            )
    return "\n".join(lines)


COLORS = {
    "system": "tab:blue",
    "bare": "tab:gray",
    "ceiling": "tab:green",
    "baseline": "tab:orange",
    "baseline_nosync": "tab:purple",
}


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
