"""The embedded server under trust auth is reachable by its own user only: a socket directory
outside DATA_DIR (a long path) is private, not world-writable, and gone after stop; starting
as root opens DATA_DIR's parents to traversal at most, never to reading or writing."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg

from persistence.embedded import EmbeddedPostgres

OPENING = stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH


def _socket_dir(url: str) -> Path:
    return Path(parse_qs(urlsplit(url).query)["host"][0])


def test_a_long_data_dir_gets_a_private_socket_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / ("deep-" * 20) / "data"
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    try:
        socket_dir = _socket_dir(url)
        assert not socket_dir.is_relative_to(data_dir)  # the path was too long for a socket
        mode = socket_dir.stat()
        assert stat.S_IMODE(mode.st_mode) == 0o700, oct(mode.st_mode)
        assert server.pid is not None
        server_uid = Path(f"/proc/{server.pid}").stat().st_uid
        assert mode.st_uid == server_uid  # the server's own user, whoever started it
        socket = socket_dir / ".s.PGSQL.5432"
        assert stat.S_IMODE(socket.stat().st_mode) & 0o077 == 0
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert not socket_dir.exists()


def test_the_parents_of_data_dir_are_never_opened_for_reading(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    server = EmbeddedPostgres(private / "inner" / "data")
    server.start()
    try:
        assert stat.S_IMODE(private.stat().st_mode) & OPENING == 0, oct(private.stat().st_mode)
    finally:
        server.stop()
