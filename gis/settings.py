"""Every setting of gridgov, one class per concern, each read from the environment under its own prefix and
through one cached accessor (`database_settings()`, `tile_settings()`, ...), as developmentseed/tipg keeps its
settings in one module.

| concern | class | prefix |
|---|---|---|
| database and embedded cluster | DatabaseSettings | GRIDGOV_ (database_url, data_dir, pool_max, ...) |
| reverse proxies | ProxySettings | GRIDGOV_ (trusted_proxies) |
| HTTP: address, base map | ApiSettings | GRIDGOV_API_ |
| HTTP: request limits, HSTS | HardeningSettings | GRIDGOV_HARDENING_ |
| sign-in, tokens, passwords | AuthSettings | GRIDGOV_AUTH_ |
| personal-data access log | AuditSettings | GRIDGOV_AUDIT_ |
| intake tolerances | CitySettings | GRIDGOV_CITY_ |
| plausible times | InputSettings | GRIDGOV_INPUT_ |
| tiles and collection caching | TileSettings | GRIDGOV_TILES_ |
| ticket rates | RatesSettings | GRIDGOV_RATES_ |
| red/black list and subsidy | EvaluationSettings | GRIDGOV_EVAL_ |

An accessor reads the environment once per process; tests that change a variable in-process call its
`cache_clear()`.
"""

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


class ProxySettings(BaseSettings):
    """The reverse proxies in front of the app (GRIDGOV_TRUSTED_PROXIES; api/security.py)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_", extra="ignore")

    trusted_proxies: str = ""
    """Comma-separated addresses or networks (CIDR) of the proxies whose X-Forwarded-For and X-Forwarded-Proto
    are believed; `*` believes every client (only when nothing but the proxy can reach the app). Empty, the
    default: no forwarded header is believed, and the login throttle and the audit log record the address
    that connected."""


class ApiSettings(BaseSettings):
    """HTTP-facing settings."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    base_tile_url: str | None = None
    base_tile_attribution: str = ""


class HardeningSettings(BaseSettings):
    """Request limits and transport headers (api/middleware.py)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_HARDENING_", extra="ignore")

    max_body_bytes: int = 2 * 1024 * 1024
    """Any body that is not a file upload (JSON, forms)."""
    max_upload_bytes: int = 64 * 1024 * 1024
    """multipart/form-data bodies: hotline exports and ticket photos."""
    hsts: bool = False
    """Send Strict-Transport-Security (only behind TLS)."""


class AuthSettings(BaseSettings):
    """Token lifetime, password rules and sign-in throttling (gis/access/auth.py)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_AUTH_", extra="ignore")

    token_hours: float = 12.0
    min_password_length: int = 10
    # Sign-in throttling (see `login`): keyed by source address and account together, so nobody can lock an
    # account out for its owner.
    login_free_failures: int = 5
    """Failed sign-ins of one address on one account before it has to wait."""
    login_backoff_seconds: float = 30.0
    """The first wait after the free failures; each further failure doubles it."""
    login_backoff_max_seconds: float = 900.0
    login_memory_seconds: float = 3600.0
    """How long the failures of an address on an account count for its back-off."""
    login_window_seconds: float = 300.0
    """The sliding window of the per-address ceiling."""
    login_failures_per_address: int = 20
    """Failures of one address on any accounts within the window before it is refused (an office behind one NAT
    address shares it)."""
    login_failures_per_account: int = 50
    """Failures on one account from all addresses within the memory before only addresses that have not failed
    on it may try (a distributed guess gets one try per address, the owner still signs in)."""


class AuditSettings(BaseSettings):
    """The personal-data access log (gis/access/audit.py)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_AUDIT_", extra="ignore")

    asynchronous_commit: bool = False
    """Commit log rows without waiting for the disk flush (about 5 ms less per logged request on a plain disk);
    a crash of PostgreSQL itself may then lose the last fraction of a second of log rows. Off by default."""


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


class TileSettings(BaseSettings):
    """Caching of tiles and collection metadata."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_TILES_", extra="ignore")

    boundary_max_age: int = 3600
    complaint_max_age: int = 15
    cache_megabytes: int = 256
    version_check_seconds: float = 2.0


class RatesSettings(BaseSettings):
    """How the ticket rates are ranked (gis/tickets/rates.py)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_RATES_", extra="ignore")

    min_sample: int = 10
    """Least denominator of a rate for a unit to be ranked on it (smaller units are listed, not ranked)."""


class EvaluationSettings(BaseSettings):
    """Weights and thresholds of the red/black list and the old-estate subsidy (gis/analytics/evaluation.py)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_EVAL_", extra="ignore")

    residents_weight: float = 5.0
    regulator_weight: float = 3.0
    street_weight: float = 2.0
    red_share: float = 0.10
    black_share: float = 0.10
    excellent_score: float = 90.0
    """A company is rated excellent when red-listed or when its total reaches this score."""
    satisfied_rating: int = 4
    """Ticket ratings (1–5) at or above this count as satisfied."""
    subsidy_yuan_per_m2_month: float = 0.2


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


@lru_cache
def proxy_settings() -> ProxySettings:
    return ProxySettings()


@lru_cache
def hardening_settings() -> HardeningSettings:
    return HardeningSettings()


@lru_cache
def auth_settings() -> AuthSettings:
    return AuthSettings()


@lru_cache
def audit_settings() -> AuditSettings:
    return AuditSettings()


@lru_cache
def tile_settings() -> TileSettings:
    return TileSettings()


@lru_cache
def rates_settings() -> RatesSettings:
    return RatesSettings()


@lru_cache
def evaluation_settings() -> EvaluationSettings:
    return EvaluationSettings()
