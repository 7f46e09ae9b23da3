"""Configuration read once at start: the generated JWT secret is shared by every process that
starts at the same moment, whole, private, and nothing else is left behind; a placement by
node labels is refused at start unless Ray would take its labels."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config import Settings
from gateway.system import actor_config


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


def test_node_label_placement_reads_its_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTOR_PLACEMENT", "node-label")
    monkeypatch.setenv("ACTOR_NODE_LABELS", " boxoffice.io/categories=yes , zone=!b ")
    settings = Settings()
    assert settings.actor_node_labels == (("boxoffice.io/categories", "yes"), ("zone", "!b"))
    assert actor_config(settings, "postgresql://x").node_labels == settings.actor_node_labels


@pytest.mark.parametrize(
    "labels", ["", " , ", "novalue", "=yes", "bad key=yes", "k=" + "v" * 64, "k=in(a,b)"]
)
def test_node_label_placement_refuses_labels_ray_would_not_take(
    monkeypatch: pytest.MonkeyPatch, labels: str
) -> None:
    monkeypatch.setenv("ACTOR_PLACEMENT", "node-label")
    monkeypatch.setenv("ACTOR_NODE_LABELS", labels)
    with pytest.raises(ValidationError):
        Settings()


def test_other_placements_need_no_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTOR_PLACEMENT", "pack")
    monkeypatch.delenv("ACTOR_NODE_LABELS", raising=False)
    assert Settings().actor_node_labels == ()
    monkeypatch.setenv("ACTOR_PLACEMENT", "everywhere")
    with pytest.raises(ValidationError):
        Settings()
