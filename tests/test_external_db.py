"""An external database server: `gridgov db upgrade` through GRIDGOV_DATABASE_URL against freshly created
databases on a second cluster (not the embedded one, which creates the extensions itself).

A superuser gets the extensions created and the schema migrated; a role that may not create PostGIS is stopped
before the first migration with the exact SQL to run — and once a superuser ran that SQL, the same role
migrates the database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from gis.db.embedded import EmbeddedCluster

ROOT = Path(__file__).resolve().parent.parent
GRIDGOV = Path(sys.executable).with_name("gridgov")
LIMITED_ROLE = "gridgov_owner"


@pytest.fixture(scope="module")
def external_server():
    """A second PostgreSQL cluster; only its `postgres` maintenance database has extensions."""
    cluster = EmbeddedCluster(data_dir=Path(tempfile.mkdtemp(prefix="gridgov-external-")), db_name="postgres")
    cluster.start()
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {LIMITED_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
    yield cluster
    cluster.destroy()


def _fresh_database(cluster: EmbeddedCluster, name: str, owner: str = "postgres") -> None:
    """A database as an operator creates one: plain CREATE DATABASE, from template1, without extensions."""
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER {owner}')


def _url(cluster: EmbeddedCluster, name: str, role: str = "postgres") -> str:
    return f"postgresql://{role}@127.0.0.1:{cluster.port}/{name}"


def _db_upgrade(url: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRIDGOV_")}
    env["GRIDGOV_DATABASE_URL"] = url
    # A data directory that does not exist: the command must not fall back to (or create) an embedded cluster.
    env["GRIDGOV_DATA_DIR"] = str(Path(tempfile.gettempdir()) / "gridgov-external-unused")
    return subprocess.run([str(GRIDGOV), "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def _extensions(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {name for (name,) in conn.execute("SELECT extname FROM pg_extension")}


def test_a_superuser_gets_the_extensions_and_the_schema(external_server):
    _fresh_database(external_server, "fresh")
    url = _url(external_server, "fresh")
    assert _extensions(url) == {"plpgsql"}

    first = _db_upgrade(url)
    assert first.returncode == 0, first.stderr
    assert "schema at" in first.stdout
    assert {"postgis", "pg_trgm"} <= _extensions(url)
    with psycopg.connect(url) as conn:
        geometry_columns = conn.execute("SELECT count(*) FROM geometry_columns WHERE f_table_schema = 'public'")
        assert geometry_columns.fetchone()[0] >= 8
        assert conn.execute("SELECT count(*) FROM category").fetchone()[0] > 0

    again = _db_upgrade(url)
    assert again.returncode == 0, again.stderr
    assert "0 categories added" in again.stdout
    assert not Path(tempfile.gettempdir(), "gridgov-external-unused").exists()


def test_a_role_without_the_right_gets_the_exact_sql_to_run(external_server):
    _fresh_database(external_server, "limited", owner=LIMITED_ROLE)
    url = _url(external_server, "limited", LIMITED_ROLE)

    refused = _db_upgrade(url)
    assert refused.returncode != 0
    message = refused.stderr
    assert "Traceback" not in message, message
    assert LIMITED_ROLE in message and "limited" in message
    sql = re.search(r"执行：((?:CREATE EXTENSION IF NOT EXISTS \w+; ?)+)", message)
    assert sql, message
    assert "CREATE EXTENSION IF NOT EXISTS postgis;" in sql.group(1)
    # Stopped before the first migration: no table, no half-migrated schema.
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    assert tables == 0

    # The SQL the message gives is all a superuser has to run; then the same role migrates the database.
    with psycopg.connect(_url(external_server, "limited"), autocommit=True) as conn:
        conn.execute(sql.group(1))
    done = _db_upgrade(url)
    assert done.returncode == 0, done.stderr
    assert {"postgis", "pg_trgm"} <= _extensions(url)


def test_a_server_without_the_database_is_a_clear_error(external_server):
    refused = _db_upgrade(_url(external_server, "no_such_database"))
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr and "无法连接数据库" in refused.stderr, refused.stderr
