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
| the city's own base-map file | BasemapSettings | GRIDGOV_ (basemap, basemap_attribution) |
| ticket rates | RatesSettings | GRIDGOV_RATES_ |
| red/black list and subsidy | EvaluationSettings | GRIDGOV_EVAL_ |
| credit file scoring | CreditSettings | GRIDGOV_CREDIT_ |
| programme figures' targets | ProgrammeSettings | GRIDGOV_PROGRAMME_ |
| maps handed on (offline HTML) | ExportSettings | GRIDGOV_EXPORT_ |
| suggested category and party (dispatch model) | DispatchSettings | GRIDGOV_DISPATCH_ |
| emerging hot spots and proactive tasks | ProactiveSettings | GRIDGOV_PROACTIVE_ |
| likely duplicates while reporting | SimilarSettings | GRIDGOV_SIMILAR_ |
| complaints partitioned by month (opt-in) | PartitionSettings | GRIDGOV_PARTITIONS_ |

An accessor reads the environment once per process; tests that change a variable in-process call its
`cache_clear()`.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from pydantic import Field
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
    database_read_urls: str = ""
    """Hot standbys for read-only routes, comma-separated libpq URLs (GRIDGOV_DATABASE_READ_URLS); empty: none."""
    replica_max_lag_bytes: int = 16 * 1024 * 1024
    """A replica further behind the primary's WAL than this leaves the rotation until it catches up."""
    replica_max_lag_s: float = 30.0
    """A replica more than this many seconds behind the primary (measured at the polls) leaves the rotation."""
    replica_poll_s: float = 1.0
    """How often each replica's replay position and lag are read (one query per replica, not per request)."""
    replica_recent_writers: int = 10_000
    """How many callers' last write positions are remembered for read-your-writes; older ones fold into one floor."""


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


class SimilarSettings(BaseSettings):
    """Likely duplicates shown while a complaint is reported (gis/intake/similar.py, 相似诉求): which tickets are
    candidates, how each part weighs in the score, and what is shown."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_SIMILAR_", extra="ignore")

    radius_m: float = 150.0
    """Candidates lie within this many metres of the report (the place the caller may see, for the public)."""
    window_days: float = 30.0
    """Open tickets reported, and closed tickets closed, at most this many days before the report."""
    threshold: float = 0.5
    """Least score (0 to 1) for a ticket to be shown as a likely duplicate (chosen on the labelled set of seed 1,
    fixtures/duplicate_set.py: 0.45 shows other problems at the same place, 0.55 misses repeats when no dispatch
    model is trained; benchmarks/bench_duplicates.py measures another seed)."""
    max_results: int = 3
    """Most likely duplicates shown, best first."""
    weight_distance: float = 0.25
    weight_time: float = 0.15
    weight_text: float = 0.35
    weight_category: float = 0.20
    weight_building: float = 0.05
    """The parts' weights; the score is their weighted mean, so only their ratios matter."""
    use_model: bool = True
    """Let the dispatch model's category probabilities count as text similarity (when a model is trained)."""
    idf_sample: int = 5000
    """Newest complaint texts whose character n-gram frequencies weigh the text similarity (TF-IDF)."""


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


class BasemapSettings(BaseSettings):
    """The city's own base map (gis/serve/basemap.py): one local MBTiles or PMTiles file, raster or vector."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_", extra="ignore")

    basemap: Path | None = None
    """The file (GRIDGOV_BASEMAP); unset, the map has no base map. `make demo` points it at the demo's own."""
    basemap_attribution: str = ""
    """Shown on the map instead of the file's own attribution, when set."""


class RatesSettings(BaseSettings):
    """How the ticket rates are ranked (gis/tickets/rates.py)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_RATES_", extra="ignore")

    min_sample: int = 10
    """Least denominator of a rate for a unit to be ranked on it (smaller units are listed, not ranked)."""
    repeat_window_days: int = 30
    """Days after a closing in which a complaint of the same category at the same compound (or building) marks
    that closing as not holding (重复投诉): it is not counted as resolved (gis/tickets/repeats.py); 1 to 366."""


class EvaluationSettings(BaseSettings):
    """Weights and thresholds of the red/black list and the old-estate subsidy (gis/analytics/evaluation.py)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_EVAL_", extra="ignore")

    residents_weight: float = 5.0
    regulator_weight: float = 3.0
    street_weight: float = 2.0
    community_weight: float = 0.0
    """The community party organisation's own part (its ratings apart from the street's); 0 folds community
    ratings into the street part (Panshi's 5 : 3 : 2). Tai'an's variant gives it 60%: see `EVALUATION_SCHEMES`."""
    min_inspections: int = 2
    """Least inspections in a half-year for the regulator's part to count; below it (or below `min_ratings`
    ratings) a company is listed as insufficient data (数据不足), not ranked."""
    min_ratings: int = 2
    """Least street and community ratings in a half-year for the street part to count."""
    min_ticket_sample: int = 10
    """Least answered (satisfaction) or counted (resolution) tickets for a ticket input to enter the residents' part;
    both follow the desk's rules (gis/tickets/rates.py), the satisfied rating (4 or 5) and the repeat window among
    them."""
    min_survey_sample: int = 30
    """Least residents answering a company's surveys in a half-year for the surveys to enter the residents' part."""
    rectification_days: int = 90
    """Days after the evaluated half-year's end a black-listed company has to rectify (整改)."""
    red_share: float = 0.10
    black_share: float = 0.10
    excellent_score: float = 90.0
    """A company is rated excellent when red-listed or when its total reaches this score."""
    subsidy_yuan_per_m2_month: float = 0.2


EVALUATION_SCHEMES = {
    "panshi": {"residents_weight": 5.0, "regulator_weight": 3.0, "street_weight": 2.0, "community_weight": 0.0},
    "taian": {"residents_weight": 2.0, "regulator_weight": 1.0, "street_weight": 1.0, "community_weight": 6.0},
}
"""Weights of the red/black list as two cities set them: Panshi residents : regulator : street = 5 : 3 : 2; Tai'an
gives the community party organisation 60% and the rest 2 : 1 : 1 (GRIDGOV_EVAL_*_WEIGHT sets any other)."""


class CreditSettings(BaseSettings):
    """How approved credit-file items score and grade a company (gis/analytics/credit.py)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_CREDIT_", extra="ignore")

    base_score: float = 80.0
    points: dict[str, float] = {
        "party_building": 5.0, "staffing": 2.0, "service_record": 2.0, "award": 5.0, "praise": 2.0,
        "owner_complaint": -3.0, "penalty": -10.0, "bad_credit": -15.0,
    }
    """Points of one approved item per category (GRIDGOV_CREDIT_POINTS as JSON); basic information of another
    category is recorded and scores nothing."""
    cap_per_category: float = 15.0
    """Most points, up or down, one category can add."""
    grades: dict[str, float] = {"A": 90.0, "B": 80.0, "C": 60.0}
    """Least score of each grade, best first; below the last is D."""


class ExportSettings(BaseSettings):
    """Where the offline HTML map (gis/reports/map_export.py) finds the front-end libraries it inlines."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_EXPORT_", extra="ignore")

    vendor_dir: Path = PROJECT_ROOT / "webmap" / "static" / "vendor"
    """The npm copies of Leaflet and its plugins that set-up vendors (scripts/vendor-assets.sh)."""


@lru_cache
def export_settings() -> ExportSettings:
    """Where the offline map's inlined libraries are (GRIDGOV_EXPORT_*), read once and cached."""
    return ExportSettings()


@lru_cache
def input_settings() -> InputSettings:
    """The bounds on plausible times users may write (GRIDGOV_INPUT_*), read once and cached."""
    return InputSettings()


@lru_cache
def database_settings() -> DatabaseSettings:
    """Where the database is and how connections behave (GRIDGOV_*), read once and cached."""
    return DatabaseSettings()


@lru_cache
def api_settings() -> ApiSettings:
    """The HTTP-facing settings (GRIDGOV_API_*), read once and cached."""
    return ApiSettings()


@lru_cache
def similar_settings() -> SimilarSettings:
    """How likely duplicates are found while a complaint is reported (GRIDGOV_SIMILAR_*), read once and cached."""
    return SimilarSettings()


@lru_cache
def city_settings() -> CitySettings:
    """The limits of the city served and the intake tolerances (GRIDGOV_CITY_*), read once and cached."""
    return CitySettings()


@lru_cache
def proxy_settings() -> ProxySettings:
    """The trusted reverse proxies (GRIDGOV_TRUSTED_PROXIES), read once and cached."""
    return ProxySettings()


@lru_cache
def hardening_settings() -> HardeningSettings:
    """Request limits and transport headers (GRIDGOV_HARDENING_*), read once and cached."""
    return HardeningSettings()


@lru_cache
def auth_settings() -> AuthSettings:
    """Token lifetime, password rules and sign-in throttling (GRIDGOV_AUTH_*), read once and cached."""
    return AuthSettings()


@lru_cache
def audit_settings() -> AuditSettings:
    """The personal-data access log's settings (GRIDGOV_AUDIT_*), read once and cached."""
    return AuditSettings()


@lru_cache
def basemap_settings() -> BasemapSettings:
    """The base-map file (GRIDGOV_BASEMAP), read once and cached."""
    return BasemapSettings()


@lru_cache
def tile_settings() -> TileSettings:
    """Caching of tiles and collection metadata (GRIDGOV_TILES_*), read once and cached."""
    return TileSettings()


@lru_cache
def rates_settings() -> RatesSettings:
    """How the ticket rates are ranked (GRIDGOV_RATES_*), read once and cached."""
    return RatesSettings()


@lru_cache
def evaluation_settings() -> EvaluationSettings:
    """Weights and thresholds of the red/black list and the subsidy (GRIDGOV_EVAL_*), read once and cached."""
    return EvaluationSettings()


@lru_cache
def credit_settings() -> CreditSettings:
    """How credit-file items score and grade (GRIDGOV_CREDIT_*), read once and cached."""
    return CreditSettings()


class ProgrammeSettings(BaseSettings):
    """Targets of the seed programmes' figures (gis/analytics/programme.py), as shares (0.7 = 70%) or, for count
    figures, counts; unset (None) means no target. The defaults are the published ones (../shared/domain.md and its
    seeds): where a city published only what it reached, there is no target until one is set, e.g.
    GRIDGOV_PROGRAMME_COMMITTEE_FORMATION=0.75; `none` removes a target."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_PROGRAMME_", extra="ignore", env_parse_none_str="none")

    professional_households: float | None = None
    professional_area: float | None = None
    old_estate_coverage: float | None = 0.70
    """老旧小区物业管理覆盖率 at least 70% (a city government's target, seed 003)."""
    community_led_old_estates: float | None = None
    community_led_companies: float | None = None
    gap_compounds: float | None = None
    committee_formation: float | None = None
    committee_party_share: float | None = 0.60
    """Party members among owners' committee members, 60% (Tai'an)."""
    committee_party_half: float | None = 1.0
    """Every committee at least half party members (Kunming's and Panshi's rule for committees)."""
    committee_party_chairs: float | None = None
    community_party_coverage: float | None = 1.0
    grid_party_coverage: float | None = 1.0
    """Party organisations wherever they can be formed (应建尽建): every community and grid."""
    company_party_org: float | None = 0.30
    company_party_work: float | None = 0.50
    """Kunming's first stage (end of 2019): organisation 30%, party work 50% (2020: 50% and 100%)."""
    cross_companies: float | None = 0.40
    cross_communities: float | None = 0.40
    """Kunming's first stage (end of 2019): 40% of companies and of communities (2020: 100%)."""
    part_time_grid_workers: float | None = None
    fee_collection: float | None = None


@lru_cache
def programme_settings() -> ProgrammeSettings:
    """The targets of the programme figures (GRIDGOV_PROGRAMME_*), read once and cached."""
    return ProgrammeSettings()


class DispatchSettings(BaseSettings):
    """The text model that suggests a complaint's category and responsible party (gis/dispatch/)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_DISPATCH_", extra="ignore")

    min_confidence: float = Field(default=0.6, ge=0.0, le=1.0)
    """Below this calibrated probability of its first category (and, for the party, of its first party) the model
    abstains: nothing is filled in and a person chooses from the top three. The probabilities are
    temperature-scaled on the newest fifth of the training history (gis/dispatch/model.py), so on the city's own
    recent complaints about p of the suggestions with confidence p are right; benchmarks/bench_dispatch.py
    prints the share abstained and the accuracy of the answered at this threshold."""
    max_training_rows: int = 300_000
    """Training uses at most this many of the most recent complaints (a year of a large city is millions)."""
    max_features: int = 60_000
    """Character n-grams kept by the vectoriser (the most frequent), which bounds the model's size."""
    holdout_share: float = 0.2
    """The newest share of history held out for evaluation (a time split: the model never sees its future)."""


class ProactiveSettings(BaseSettings):
    """Emerging hot spots (gis/analytics/emerging.py) and the proactive tasks (未诉先办) they open
    (gis/analytics/proactive.py)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_PROACTIVE_", extra="ignore")

    steps: int = Field(default=12, ge=3, le=60)
    """Months of the space-time cube when a caller names none (the analysis, the tasks, 每月一题, the replay)."""
    trend_alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    """Significance of the Mann–Kendall trend that makes a hot spot intensifying or diminishing."""
    time_window: int = Field(default=0, ge=0, le=12)
    """Months before a bin that count as its neighbours (Esri's neighbourhood time step). Esri's default is 1; with
    monthly steps 0 keeps a one-month flare-up from spilling into the next month (a new hot spot stays new)."""
    min_complaints: int = Field(default=2, ge=1)
    """Complaints an area × category needs over the months a run sees before its hot spot opens a task: a single
    complaint in a quiet micro-grid is a significant Gi* (a "new hot spot") but not yet a problem to go out for."""


@lru_cache
def proactive_settings() -> ProactiveSettings:
    """The emerging hot spots' and proactive tasks' thresholds (GRIDGOV_PROACTIVE_*), read once and cached."""
    return ProactiveSettings()


@lru_cache
def dispatch_settings() -> DispatchSettings:
    """The dispatch model's threshold and training limits (GRIDGOV_DISPATCH_*), read once and cached."""
    return DispatchSettings()


class PartitionSettings(BaseSettings):
    """Complaints partitioned by month, once a deployment has converted (gis/db/partitions.py)."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_PARTITIONS_", extra="ignore")

    ahead: int = Field(default=3, ge=0, le=24)
    """Months after the current one (Beijing time) that `convert` and `ensure` create partitions for."""


@lru_cache
def partition_settings() -> PartitionSettings:
    """The partitioning settings (read once)."""
    return PartitionSettings()
