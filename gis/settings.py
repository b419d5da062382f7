"""Settings per concern, read from the environment (prefix GRIDGOV_)."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    # PostgreSQL runs as `postgres` when we are root, and root's home is usually closed to it,
    # so a root-run cluster lives under /var/lib, one per checkout.
    if os.geteuid() == 0:
        digest = hashlib.sha1(str(PROJECT_ROOT).encode()).hexdigest()[:10]
        return Path("/var/lib/gridgov") / digest
    return PROJECT_ROOT / ".gridgov"


class DatabaseSettings(BaseSettings):
    """Where the database is; with no URL, gridgov runs its own cluster in `data_dir`."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_", extra="ignore")

    database_url: str | None = None
    data_dir: Path = _default_data_dir()
    pg_bin: Path = Path("/usr/lib/postgresql/15/bin")
    db_name: str = "gridgov"
    pool_min: int = 2
    pool_max: int = 10
    statement_timeout_ms: int = 30_000


class ApiSettings(BaseSettings):
    """HTTP-facing settings."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    base_tile_url: str | None = None
    base_tile_attribution: str = ""


class CitySettings(BaseSettings):
    """Limits of the city served and the intake tolerances."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_CITY_", extra="ignore")

    snap_tolerance_m: float = 200.0
    auto_place_min_score: float = 0.75
    """Least address-match score for a complaint to be placed without a person (gis/intake/gazetteer.py)."""
    duplicate_radius_m: float = 50.0
    duplicate_window_days: int = 7


class InputSettings(BaseSettings):
    """Bounds on what users may write: the window of plausible times (受理时间 and the like)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_INPUT_", extra="ignore")

    earliest_time: datetime = datetime(2000, 1, 1, tzinfo=timezone(timedelta(hours=8)))
    """No time before this is accepted (Beijing midnight of 2000-01-01 by default)."""
    future_tolerance_hours: float = 24.0
    """No time later than now plus this is accepted (clocks and time zones differ a little)."""


@lru_cache
def input_settings() -> InputSettings:
    return InputSettings()


@lru_cache
def database_settings() -> DatabaseSettings:
    return DatabaseSettings()


@lru_cache
def api_settings() -> ApiSettings:
    return ApiSettings()


@lru_cache
def city_settings() -> CitySettings:
    return CitySettings()
