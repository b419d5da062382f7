"""Schema migrations through Alembic; `upgrade` is idempotent.

The migrations need PostgreSQL extensions (PostGIS for every geometry column, pg_trgm for fuzzy name
matching). The embedded cluster creates them itself; on any other server `upgrade` creates the missing ones
where the role may, and otherwise stops before the first migration with the exact SQL a superuser has to run.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql

from gis.db.engine import libpq_url, with_driver
from gis.errors import SetupError

MIGRATIONS = Path(__file__).parent / "migrations"

REQUIRED_EXTENSIONS = ("postgis", "pg_trgm")
"""Every extension the migrations and the queries use, in the order to create them."""

SERVER_PACKAGES = {"postgis": "postgresql-15-postgis-3", "pg_trgm": "postgresql-contrib"}
"""Debian packages that provide each extension on the database server (pg_trgm ships with PostgreSQL)."""


def alembic_config(url: str) -> Config:
    """An Alembic configuration for gridgov's migrations on the database at `url` (any driver given is replaced by
    psycopg)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", with_driver(url, "psycopg").replace("%", "%%"))
    return config


def extensions_sql(names: list[str] | tuple[str, ...]) -> str:
    """The SQL that creates `names`, as a superuser runs it in the gridgov database."""
    return " ".join(f"CREATE EXTENSION IF NOT EXISTS {name};" for name in names)


def ensure_extensions(url: str) -> list[str]:
    """Create the extensions the schema needs where they are missing; return the ones created.

    Raises SetupError, naming the database and giving the exact SQL, when the server cannot reach the
    database, does not have an extension installed, or the role may not create one (PostGIS needs a
    superuser; pg_trgm is trusted, so the database owner may create it)."""
    try:
        conn = psycopg.connect(libpq_url(url), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise SetupError(f"无法连接数据库：{str(error).strip()}") from error
    with conn:
        database, role = conn.execute("SELECT current_database(), current_user").fetchone()
        installed = {name for (name,) in conn.execute("SELECT extname FROM pg_extension")}
        missing = [name for name in REQUIRED_EXTENSIONS if name not in installed]
        if not missing:
            return []
        available = {name for (name,) in conn.execute(
            "SELECT name FROM pg_available_extensions WHERE name = ANY(%s)", (missing,))}
        absent = [name for name in missing if name not in available]
        if absent:
            packages = " ".join(dict.fromkeys(SERVER_PACKAGES[name] for name in absent))
            raise SetupError(
                f"数据库服务器上没有安装扩展 {', '.join(absent)}：请在数据库服务器上安装软件包 {packages}，"
                f"然后以超级用户在数据库 {database} 中执行：{extensions_sql(missing)}")
        created, refused, reasons = [], [], []
        for name in missing:
            try:
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)))
                created.append(name)
            except psycopg.Error as error:
                refused.append(name)
                reasons.append(f"{name}：{(error.diag.message_primary or str(error)).strip()}")
        if refused:
            raise SetupError(
                f"数据库用户 {role} 无权在数据库 {database} 中创建扩展 {', '.join(refused)}（{'；'.join(reasons)}）。"
                f"请以超级用户在数据库 {database} 中执行：{extensions_sql(refused)}"
                f"  例如：psql -d {database} -c \"{extensions_sql(refused)}\"，然后重新运行 gridgov db upgrade")
        return created


def upgrade(url: str) -> None:
    """Bring the database to the newest schema (every head: feature branches may each add one), creating the
    extensions it needs first."""
    ensure_extensions(url)
    command.upgrade(alembic_config(url), "heads")


def current(url: str) -> list[str]:
    """The revisions the database at `url` is at (empty before the first migration)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(with_driver(url, "psycopg"))
    with engine.connect() as conn:
        return list(MigrationContext.configure(conn).get_current_heads())
