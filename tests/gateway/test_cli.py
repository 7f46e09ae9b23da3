"""The `boxoffice` command: the server runs without the bench extra, and `bench` says how to
get it when it is missing."""

from __future__ import annotations

import subprocess
import sys

BENCH_ONLY = ("aiohttp", "rich", "matplotlib", "numpy")


def run_without_bench_extra(code: str) -> subprocess.CompletedProcess[str]:
    # A module set to None in sys.modules cannot be imported: as if it were not installed.
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in BENCH_ONLY)
    return subprocess.run(
        [sys.executable, "-c", f"import sys; {blocked}; {code}"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_server_imports_nothing_of_the_bench_extra() -> None:
    served = run_without_bench_extra(
        "import gateway.app, gateway.cli, gateway.system, realtime.server, actors.category"
    )
    assert served.returncode == 0, served.stderr


def test_bench_without_its_extra_says_how_to_install_it() -> None:
    bench = run_without_bench_extra("from gateway.cli import main; sys.exit(main(['bench']))")
    assert bench.returncode == 2, bench.stderr
    assert "pip install 'boxoffice[bench]'" in bench.stderr
    assert "Traceback" not in bench.stderr
