"""Database connections: the URL (given or embedded), sync engines for the CLI and async ones for the API."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gis.db.embedded import EmbeddedCluster
from gis.settings import DatabaseSettings, database_settings


def embedded_cluster(settings: DatabaseSettings | None = None) -> EmbeddedCluster:
    """The embedded PostgreSQL cluster the settings describe (data directory, server binaries, database name); not
    started."""
    settings = settings or database_settings()
    return EmbeddedCluster(data_dir=settings.data_dir, pg_bin=settings.pg_bin, db_name=settings.db_name)


def database_url(settings: DatabaseSettings | None = None, start: bool = True) -> str:
    """The plain libpq URL of the database: GRIDGOV_DATABASE_URL, or the embedded cluster (started if asked)."""
    settings = settings or database_settings()
    if settings.database_url:
        return settings.database_url
    cluster = embedded_cluster(settings)
    return cluster.start() if start else cluster.url()


def with_driver(url: str, driver: str) -> str:
    """Return `url` with the SQLAlchemy driver set (psycopg, asyncpg)."""
    return make_url(url).set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """Return `url` without a SQLAlchemy driver, as libpq and psycopg take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sync_engine(url: str | None = None) -> Engine:
    """A synchronous psycopg engine for the CLI and batch work (the settings' URL when `url` is None), pinged before
    use, with twenty times the API's statement timeout."""
    settings = database_settings()
    return create_engine(
        with_driver(url or database_url(), "psycopg"),
        pool_pre_ping=True,
        connect_args={"options": f"-c statement_timeout={settings.statement_timeout_ms * 20}"},
    )


def async_engine(url: str | None = None) -> AsyncEngine:
    """The asyncpg engine of the API (the settings' URL when `url` is None): a pool of `pool_max` connections without
    overflow, a 10 s wait for a free one, the settings' statement timeout and JIT off."""
    settings = database_settings()
    return create_async_engine(
        with_driver(url or database_url(), "asyncpg"),
        pool_size=settings.pool_max,
        max_overflow=0,
        # No pre-ping: it costs a round trip per request; a connection that died with the server raises a
        # disconnect error instead, which invalidates the pool and answers 503 (api/middleware.py).
        pool_timeout=10,
        connect_args={
            "server_settings": {"statement_timeout": str(settings.statement_timeout_ms), "jit": "off"},
        },
    )
