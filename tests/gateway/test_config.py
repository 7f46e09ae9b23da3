"""Configuration read once at start: the generated JWT secret is shared by every process that
starts at the same moment, whole, private, and nothing else is left behind."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from gateway.config import Settings


def test_processes_starting_together_agree_on_one_whole_secret(tmp_path: Path) -> None:
    for round_ in range(20):
        data_dir = tmp_path / f"run-{round_}"
        start = threading.Barrier(8)
        found: list[str] = []

        def resolve(
            data_dir: Path = data_dir,
            start: threading.Barrier = start,
            found: list[str] = found,
        ) -> None:
            settings = Settings(data_dir=data_dir)
            start.wait()
            found.append(settings.resolved_jwt_secret())

        threads = [threading.Thread(target=resolve) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(found) == 8 and len(set(found)) == 1, found
        secret = found[0]
        assert len(secret) >= 48
        path = data_dir / "jwt_secret"
        assert path.read_text() == secret
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert sorted(p.name for p in data_dir.iterdir()) == ["jwt_secret"]


def test_a_configured_secret_writes_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", jwt_secret="configured-" + "x" * 32)
    assert settings.resolved_jwt_secret() == "configured-" + "x" * 32
    assert not (tmp_path / "data").exists()
