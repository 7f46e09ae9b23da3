"""The embedded server: one per data dir, shared by a second handle, gone after stop, durable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from persistence.embedded import EmbeddedPostgres


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    embedded = EmbeddedPostgres(tmp_path / "data")
    yield embedded
    embedded.stop()


def test_start_is_idempotent_and_a_second_handle_reuses_the_server(
    server: EmbeddedPostgres,
) -> None:
    url = server.start()
    pid = server.pid
    assert pid is not None
    assert server.start() == url
    assert server.pid == pid

    second = EmbeddedPostgres(server.data_dir)
    assert second.start() == url
    assert second.pid == pid
    second.stop()  # it did not start the server, so the server keeps running
    assert not _gone(pid)
    with psycopg.connect(url) as conn:
        assert conn.execute("SHOW max_connections").fetchone() == ("300",)


def test_stop_leaves_no_process_and_restart_keeps_data(server: EmbeddedPostgres) -> None:
    url = server.start()
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE kept (value text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    first_pid = server.pid
    assert first_pid is not None
    children = psutil.Process(first_pid).children(recursive=True)

    server.stop()
    assert server.pid is None
    assert _gone(first_pid)
    assert all(_gone(child.pid) for child in children)

    url = server.start()
    assert server.pid is not None and server.pid != first_pid
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT value FROM kept").fetchall() == [("still here",)]
