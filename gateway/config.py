"""Typed configuration for the whole system, read from the environment once at start.

The seed's variable names (API_GATEWAY_PORT, JWT_SECRET, ...) map one-to-one onto fields.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_CORS_ORIGINS = (
    "http://localhost:3000",
    "http://localhost:4200",
    "http://localhost:8080",
)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


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
    snapshot_interval_seconds: float = Field(default=1.0, gt=0)
    actor_idle_seconds: float = Field(default=60.0, gt=0)
    publish_interval_seconds: float = Field(default=0.02, ge=0)
    group_commit: bool = True
    db_pool_size: int = Field(default=10, ge=1)

    cors_origins: Annotated[tuple[str, ...], NoDecode] = DEFAULT_CORS_ORIGINS
    socket_events_per_second: float = Field(default=20.0, gt=0)
    socket_event_burst: int = Field(default=40, ge=1)
    socket_max_payload_bytes: int = Field(default=16_384, ge=1024)
    max_body_bytes: int = Field(default=65_536, ge=1024)
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

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
        secret = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(secret)
        return secret
