"""`make mutate`: mutmut over the modules named in pyproject.toml's [tool.mutmut], bounded.

Every mutant runs its tests in a fresh pytest session, and a session starts its own embedded
PostgreSQL unless TEST_DATABASE_URL names one: so one server is started here for the whole run
(faster, and a mutant killed for a timeout leaves no server behind). mutmut runs in its own
process group, ended as a whole when the time bound is reached. Results stay in mutants/, so the
next run goes on where this one stopped.

    python tools/mutate.py --timeout 2400 --children 2 [mutant name patterns...]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from persistence.embedded import EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = str(Path(sys.executable).with_name("mutmut"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=2400.0, help="seconds for the run")
    parser.add_argument("--children", type=int, default=2, help="mutants run at once")
    parser.add_argument("mutants", nargs="*", help='mutant name patterns, e.g. "sales.identity*"')
    args = parser.parse_args()

    database = EmbeddedPostgres(ROOT / "build" / "mutate-db")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # for mypy
    env = {**os.environ, "TEST_DATABASE_URL": database.start(), "PATH": path}
    try:
        run = subprocess.Popen(
            [MUTMUT, "run", "--max-children", str(args.children), *args.mutants],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        try:
            code = run.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"mutate: stopped after {args.timeout:.0f} s; run again to go on", flush=True)
            os.killpg(run.pid, signal.SIGTERM)
            try:
                run.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
            code = 0
    finally:
        database.stop()
    report()
    return code


def report() -> None:
    """Counts by module and status, then every mutant that no test killed."""
    listing = subprocess.run(
        [MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout
    counts: Counter[tuple[str, str]] = Counter()
    alive: list[str] = []
    for line in listing.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        module = name.split(".x", 1)[0]
        counts[module, status] += 1
        if status not in ("killed", "not checked"):
            alive.append(f"  {status:<12} {name}")
    for (module, status), count in sorted(counts.items()):
        print(f"{module:<20} {status:<12} {count:>4}")
    print("\n".join(["not killed (mutmut show NAME for the change):", *alive]))


if __name__ == "__main__":
    sys.exit(main())
