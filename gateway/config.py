"""Typed configuration for the whole system, read from the environment once at start.

The seed's variable names (API_GATEWAY_PORT, JWT_SECRET, ...) map one-to-one onto fields.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from actors.config import CALL_TIMEOUT_SECONDS, START_TIMEOUT_SECONDS

DEFAULT_CORS_ORIGINS = (
    "http://localhost:3000",
    "http://localhost:4200",
    "http://localhost:8080",
)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_node_labels(text: str) -> tuple[tuple[str, str], ...]:
    """`key=value,key=value` as Ray's label selector takes it; ValueError names what is wrong."""
    from ray._private.label_utils import validate_label_selector

    pairs: list[tuple[str, str]] = []
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        key, sep, value = (side.strip() for side in part.partition("="))
        if not sep or not key:
            raise ValueError(f"a node label must be key=value, not {part!r}")
        pairs.append((key, value))
    problem = validate_label_selector(dict(pairs))
    if problem:
        raise ValueError(problem)
    return tuple(pairs)


def parse_duration(text: str) -> timedelta:
    """Parse the seed's JWT_EXPIRES_IN forms: `1d`, `2h`, `30m`, `45s`, `3600`."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 3600, 30m, 2h, 1d)")
    amount, unit = match.groups()
    seconds = int(amount) * _UNIT_SECONDS[unit]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    host: str = "127.0.0.1"
    api_gateway_port: int = Field(default=3000, ge=0, le=65535)
    realtime_service_port: int = Field(default=3001, ge=0, le=65535)

    jwt_secret: str | None = None
    jwt_expires_in: str = "1d"

    database_url: str | None = None
    data_dir: Path = Path("data")

    ray_address: str | None = None
    ray_namespace: str = "boxoffice"
    ray_object_store_bytes: int = 80 * 1024 * 1024

    lock_ttl_seconds: float = Field(default=300.0, gt=0)
    max_tickets_per_request: int = Field(default=10, ge=1)
    # Fair sales: live holds one user may have across all categories (best-effort: checked
    # against this gateway's feed mirror, not atomically across actors), the life of a
    # waiting-list offer, and the cool-down before re-holding a category after an expiry.
    max_live_holds_per_user: int = Field(default=20, ge=1)
    waitlist_offer_seconds: float = Field(default=600.0, gt=0)
    rehold_cooldown_seconds: float = Field(default=0.0, ge=0)
    # The waiting room (issue 13): an admission pass's lifetime, and how often a queue admits.
    admission_ttl_seconds: float = Field(default=600.0, gt=0, le=86_400)
    queue_tick_seconds: float = Field(default=0.1, gt=0, le=5)
    snapshot_interval_seconds: float = Field(default=1.0, gt=0)
    actor_idle_seconds: float = Field(default=60.0, gt=0)
    publish_interval_seconds: float = Field(default=0.02, ge=0)
    group_commit: bool = True
    db_pool_size: int = Field(default=10, ge=1)
    # Multi-node operation (docs/deployment.md): a live category's PostgreSQL connections, the
    # deadline of one actor call (retries included) and where category actors are placed.
    actor_db_connections: int = Field(default=1, ge=1, le=16)
    actor_call_timeout_seconds: float = Field(default=CALL_TIMEOUT_SECONDS, gt=0, le=300)
    actor_start_timeout_seconds: float = Field(default=START_TIMEOUT_SECONDS, gt=0, le=600)
    # Worker processes kept ready on each node, so an activation does not wait for one (0: off).
    actor_spare_workers: int = Field(default=4, ge=0, le=64)
    actor_placement: Literal["spread", "pack", "node-label"] = "spread"
    # With `node-label`: the Ray node labels category actors require, `key=value,...` (Ray's
    # label selector syntax; a node gets them from `ray start --labels`).
    actor_node_labels: Annotated[tuple[tuple[str, str], ...], NoDecode] = ()

    cors_origins: Annotated[tuple[str, ...], NoDecode] = DEFAULT_CORS_ORIGINS
    socket_events_per_second: float = Field(default=20.0, gt=0)
    socket_event_burst: int = Field(default=40, ge=1)
    socket_max_payload_bytes: int = Field(default=16_384, ge=1024)
    socket_connections_per_user: int = Field(default=20, ge=1)
    socket_send_queue_limit: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=65_536, ge=1024)
    # Slow clients: a request must arrive whole this soon after its first byte (or after the
    # connection opened); a connection whose client reads nothing this long is cut.
    http_read_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    write_stall_seconds: float = Field(default=30.0, gt=0, le=3600)
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    # Hashing runs on its own threads; past workers + queue, a login answers 503 at once.
    password_hash_workers: int = Field(default=2, ge=1, le=64)
    password_hash_queue: int = Field(default=16, ge=0, le=10_000)

    # Requests per second (and burst) per token's user and per client address; see README.
    rate_limit_per_user: float = Field(default=1_000.0, gt=0)
    rate_limit_user_burst: int = Field(default=2_000, ge=1)
    rate_limit_per_address: float = Field(default=2_000.0, gt=0)
    rate_limit_address_burst: int = Field(default=4_000, ge=1)
    rate_limit_loopback: bool = False  # loopback clients are exempt from address limits
    rate_limit_keys: int = Field(default=100_000, ge=1)
    auth_attempts_per_minute_per_address: int = Field(default=30, ge=1)
    auth_attempts_per_minute_per_username: int = Field(default=10, ge=1)

    # /metrics: with a token, only `Authorization: Bearer <METRICS_TOKEN>`; without, loopback only.
    metrics_token: str | None = Field(default=None, min_length=16)
    log_format: Literal["text", "json"] = "text"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

    @field_validator("actor_node_labels", mode="before")
    @classmethod
    def _parse_labels(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_node_labels(value)
        return value

    @model_validator(mode="after")
    def _labels_for_node_label(self) -> Settings:
        if self.actor_placement == "node-label" and not self.actor_node_labels:
            raise ValueError("ACTOR_PLACEMENT=node-label needs ACTOR_NODE_LABELS (key=value,...)")
        return self

    @field_validator("jwt_expires_in")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def token_lifetime(self) -> timedelta:
        return parse_duration(self.jwt_expires_in)

    def resolved_jwt_secret(self) -> str:
        """JWT_SECRET, or a random one generated once and kept in DATA_DIR."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt_secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return _publish_secret(path, secrets.token_urlsafe(48))


def _publish_secret(path: Path, secret: str) -> str:
    """Write `secret` to `path` unless another process got there first; the secret in force.

    Written whole to a private file first, then linked into place: a process starting at the
    same moment sees no file or the whole secret, never an empty one, and the first writer
    wins for everyone (a rename would let a second writer replace a secret already in use).
    """
    staged = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secret)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(staged, path)
        except FileExistsError:
            return path.read_text().strip()
        return secret
    finally:
        staged.unlink(missing_ok=True)
