"""What a run of `boxoffice serve` leaves in DATA_DIR about its processes, so that the next
start can end them if the run was killed: its Ray runtime and its embedded PostgreSQL.

Only processes recorded by a run whose own process is gone are touched, each checked by pid
and start time (a pid reused by something else is left alone).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

RECORD_NAME = "run.json"
POSTGRES_STOP_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    started: float  # psutil create_time: with the pid, names one process for good

    @classmethod
    def of(cls, process: psutil.Process) -> Proc:
        return cls(process.pid, process.create_time())

    def alive(self) -> psutil.Process | None:
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.started) > 0.01:
                return None  # the pid was reused
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.NoSuchProcess:
            return None
        return process


@dataclass(frozen=True, slots=True)
class RunRecord:
    owner: Proc
    helpers: list[Proc] = field(default_factory=list)  # Ray's processes: ended with SIGKILL
    postgres: Proc | None = None  # the postmaster: asked for a fast shutdown

    def save(self, data_dir: Path) -> None:
        path = data_dir / RECORD_NAME
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(asdict(self)))
        partial.replace(path)  # never a half-written record

    @classmethod
    def load(cls, data_dir: Path) -> RunRecord | None:
        try:
            raw = json.loads((data_dir / RECORD_NAME).read_text())
            return cls(
                owner=Proc(**raw["owner"]),
                helpers=[Proc(**p) for p in raw.get("helpers", [])],
                postgres=Proc(**raw["postgres"]) if raw.get("postgres") else None,
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable %s", data_dir / RECORD_NAME)
            return None


def record_run(data_dir: Path, postgres_pid: int | None) -> None:
    """Write down this process and everything it started (after start-up)."""
    me = psutil.Process()
    postgres = None
    spared: set[int] = set()  # the postmaster's own children: it ends them itself
    if postgres_pid is not None:
        with contextlib.suppress(psutil.NoSuchProcess):
            postmaster = psutil.Process(postgres_pid)
            postgres = Proc.of(postmaster)
            spared = {postgres_pid, *(c.pid for c in postmaster.children(recursive=True))}
    helpers = []
    for child in me.children(recursive=True):
        if child.pid in spared:
            continue
        with contextlib.suppress(psutil.NoSuchProcess):
            helpers.append(Proc.of(child))
    RunRecord(Proc.of(me), helpers, postgres).save(data_dir)


def forget_run(data_dir: Path) -> None:
    (data_dir / RECORD_NAME).unlink(missing_ok=True)


def reap_crashed_run(data_dir: Path) -> int:
    """End what a killed run on `data_dir` left running; how many processes were ended."""
    record = RunRecord.load(data_dir)
    if record is None:
        return 0
    if record.owner.alive() is not None:
        log.warning("another run (pid %s) is using %s: nothing reaped", record.owner.pid, data_dir)
        return 0
    doomed: dict[int, psutil.Process] = {}
    for proc in record.helpers:
        process = proc.alive()
        if process is None:
            continue
        doomed[process.pid] = process
        try:
            # Workers Ray started after the record was written hang under its raylet.
            for child in process.children(recursive=True):
                doomed[child.pid] = child
        except psutil.NoSuchProcess:
            continue
    for process in doomed.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(list(doomed.values()), timeout=10)
    ended = len(doomed)
    postmaster = record.postgres.alive() if record.postgres is not None else None
    if postmaster is not None:
        # Fast shutdown, then immediate (crash recovery at the next start) if it hangs.
        for sig in (signal.SIGINT, signal.SIGQUIT):
            with contextlib.suppress(psutil.NoSuchProcess):
                postmaster.send_signal(sig)
            _, alive = psutil.wait_procs([postmaster], timeout=POSTGRES_STOP_SECONDS)
            if not alive:
                ended += 1
                break
        else:
            log.warning("the previous run's PostgreSQL (pid %s) did not stop", postmaster.pid)
    if ended:
        log.info("ended %d processes a killed run (pid %s) left behind", ended, record.owner.pid)
    forget_run(data_dir)
    return ended
