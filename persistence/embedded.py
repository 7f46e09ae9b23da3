"""A private PostgreSQL server in DATA_DIR, from the binaries the `pgserver` package ships.

Start is idempotent across processes (a file lock, then reuse of a running postmaster);
stop ends only the server this handle started.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

with warnings.catch_warnings():
    # platformdirs warns at pgserver's import when XDG_RUNTIME_DIR is unset; we never use it.
    warnings.simplefilter("ignore")
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

# Each Ray actor and gateway process holds a small pool, so the default 100 is too few.
DEFAULT_MAX_CONNECTIONS = 300
_CONF_MARKER = "# boxoffice embedded settings"
# As root, PostgreSQL refuses to run; pgserver's convention is a `pgserver` system user.
_SERVICE_USER = "pgserver"
_UNIX_SOCKET_MAX = 100
_START_TIMEOUT_S = 60


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be started or stopped; the message names the log."""


@dataclass(frozen=True, slots=True)
class _Postmaster:
    pid: int
    socket_dir: Path
    port: int


class EmbeddedPostgres:
    """The PostgreSQL server living in `<data_dir>/postgres`."""

    def __init__(self, data_dir: Path, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.pgdata = self.data_dir / "postgres"
        self.log_path = self.pgdata / "server.log"
        self.max_connections = max_connections
        self._postmaster: _Postmaster | None = None
        # The postmaster is our child when we started it, so stop() can reap it.
        self._process: subprocess.Popen[bytes] | None = None
        self._own_socket_dir: Path | None = None  # made by this handle, removed at stop

    @property
    def pid(self) -> int | None:
        """The postmaster's PID while this handle knows a running server."""
        return self._postmaster.pid if self._postmaster is not None else None

    @property
    def url(self) -> str | None:
        return _url(self._postmaster) if self._postmaster is not None else None

    def start(self) -> str:
        """Start the server, or reuse the one already running on this data dir; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._exclusive():
            running = _read_postmaster(self.pgdata)
            if running is None:
                self._initialise()
                running = self._launch()
            self._postmaster = running
            return _url(running)

    def stop(self) -> None:
        """Stop the server if this handle started it (fast shutdown) and wait for it to exit."""
        postmaster = self._postmaster
        process = self._process
        self._postmaster = None
        self._process = None
        if postmaster is None or process is None:
            return
        with self._exclusive():
            # SIGINT is PostgreSQL's fast shutdown. Signalling our own child needs no access to
            # the data directory's path, which pg_ctl (run as the service user) would.
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=_START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()  # a server that ignores fast shutdown: crash recovery next start
                process.wait()
            if self._own_socket_dir is not None:
                shutil.rmtree(self._own_socket_dir, ignore_errors=True)
                self._own_socket_dir = None

    # -- internals -----------------------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Serialise start/stop of this data dir across processes."""
        with (self.data_dir / "postgres.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _initialise(self) -> None:
        self.pgdata.mkdir(exist_ok=True)
        if _service_user() is not None:
            self._grant_service_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self._run(
                "initdb",
                ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
            )
        self._write_settings()

    def _grant_service_user(self) -> None:
        entry = ensure_user_exists(_SERVICE_USER)
        assert entry is not None
        # Not pgserver's ensure_prefix_permissions on DATA_DIR: it makes every parent readable
        # by everyone (as root, /root included). The service user needs to traverse, no more.
        _grant_traverse(self.pgdata, entry.pw_uid, entry.pw_gid)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        readable = 0o044
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable | 0o011)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)

    def _write_settings(self) -> None:
        conf = self.pgdata / "postgresql.conf"
        text = conf.read_text()
        block = (
            f"\n{_CONF_MARKER}\nmax_connections = {self.max_connections}\n"
            # Trust auth: only the server's own user (and root) may even reach the socket.
            "unix_socket_permissions = 0700\n"
        )
        if _CONF_MARKER in text:
            text = text[: text.index(_CONF_MARKER)].rstrip("\n") + "\n"
        conf.write_text(text + block)

    def _socket_dir(self) -> Path:
        """Where the server's socket lives: in its data dir, or when that path is too long for
        a socket, a fresh private directory (0700, unguessable name, owned by the server's
        user), never a shared world-writable one: under trust auth, reaching the socket is
        being the superuser. Other processes find it through postmaster.pid."""
        if len(str(self.pgdata / ".s.PGSQL.5432")) <= _UNIX_SOCKET_MAX:
            return self.pgdata
        socket_dir = Path(tempfile.mkdtemp(prefix="boxoffice-pg-"))
        service = _service_user()
        if service is not None:
            entry = ensure_user_exists(service)
            assert entry is not None
            os.chown(socket_dir, entry.pw_uid, entry.pw_gid)
        self._own_socket_dir = socket_dir
        return socket_dir

    def _launch(self) -> _Postmaster:
        command = [
            str(POSTGRES_BIN_PATH / "postgres"),
            "-D",
            str(self.pgdata),
            "-h",
            "",
            "-k",
            str(self._socket_dir()),
        ]
        with open(os.devnull, "rb") as stdin, self.log_path.open("ab") as log:
            # A session of its own: Ctrl-C in the terminal must not reach the server directly.
            process = subprocess.Popen(
                command,
                stdin=stdin,
                stdout=log,
                stderr=subprocess.STDOUT,
                **_as_service_user(),
                start_new_session=True,
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            running = _read_postmaster(self.pgdata)
            if running is not None and running.pid == process.pid:
                self._process = process
                return running
            if process.poll() is not None or time.monotonic() > deadline:
                if process.poll() is None:
                    process.kill()
                process.wait()
                raise EmbeddedPostgresError(f"PostgreSQL did not start; see {self.log_path}")
            time.sleep(0.05)

    def _run(self, program: str, args: Sequence[str]) -> None:
        command = [str(POSTGRES_BIN_PATH / program), "-D", str(self.pgdata), *args]
        with open(os.devnull, "rb") as stdin, (self.data_dir / "pg_ctl.out").open("ab") as out:
            result = subprocess.run(
                command,
                stdin=stdin,
                stdout=out,
                stderr=subprocess.STDOUT,
                **_as_service_user(),
                check=False,
                timeout=_START_TIMEOUT_S + 30,
            )
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{program} {' '.join(args)} failed ({result.returncode}); "
                f"see {self.data_dir / 'pg_ctl.out'} and {self.log_path}"
            )


def _grant_traverse(path: Path, uid: int, gid: int) -> None:
    """Let user `uid` reach `path`: execute (traverse) for others on each parent that it
    cannot traverse yet, and nothing else: no read (listing), no write, no change elsewhere."""
    for parent in path.parents:
        mode = parent.stat()
        if (
            (mode.st_uid == uid and mode.st_mode & stat.S_IXUSR)
            or (mode.st_gid == gid and mode.st_mode & stat.S_IXGRP)
            or mode.st_mode & stat.S_IXOTH
        ):
            continue
        parent.chmod(stat.S_IMODE(mode.st_mode) | stat.S_IXOTH)


def _as_service_user() -> dict[str, Any]:
    """Popen's arguments that run a program as the service user, its own group included: with
    `user=` alone it would keep root's groups, and the group bits of root-owned parents."""
    user = _service_user()
    if user is None:
        return {}
    return {"user": user, "group": user, "extra_groups": []}


def _service_user() -> str | None:
    return _SERVICE_USER if os.geteuid() == 0 else None


def _url(postmaster: _Postmaster) -> str:
    port = "" if postmaster.port == 5432 else f"&port={postmaster.port}"
    return f"postgresql://postgres:@/postgres?host={postmaster.socket_dir}{port}"


def _read_postmaster(pgdata: Path) -> _Postmaster | None:
    """The running postmaster of `pgdata`, or None (no pid file, stale file, not ready)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None
    pid = int(lines[0])
    if not _is_alive(pid):
        return None
    return _Postmaster(pid=pid, socket_dir=Path(lines[4].strip()), port=int(lines[3]))


def _is_alive(pid: int) -> bool:
    try:
        status: str = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return False
    return status != "zombie"  # psutil.STATUS_ZOMBIE
