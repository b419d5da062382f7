"""Schema migrations through Alembic; `upgrade` is idempotent."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from gis.db import with_driver

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", with_driver(url, "psycopg").replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the database to the newest schema (every head: feature branches may each add one)."""
    command.upgrade(alembic_config(url), "heads")


def current(url: str) -> list[str]:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(with_driver(url, "psycopg"))
    with engine.connect() as conn:
        return list(MigrationContext.configure(conn).get_current_heads())
