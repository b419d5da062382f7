"""Migrations never change: each holds the SQL it ran, and the live code's SQL is what the newest one installed.

A migration that imported live code would be rewritten whenever that code changed, and a fresh database would
then no longer get the schema the existing ones have. So (a) no revision file imports the project, and (b) every
function and trigger that the live code defines in SQL is, in a freshly migrated database, exactly what the live
code defines now: a developer who changes the live SQL without a new migration that installs it is told here.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import tomllib
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory

from gis.access import audit
from gis.db.migrate import alembic_config
from gis.serve import tilekey
from gis.tickets import routing_sql

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ROOT / "gis" / "db" / "migrations" / "versions"
PROJECT_PACKAGES = ("gis", "api", "webmap", "cli", "fixtures", "benchmarks", "tests")

LIVE_SQL = {
    "gis.tickets.routing_sql.TICKET_FUNCTIONS_SQL": routing_sql.TICKET_FUNCTIONS_SQL,
    "gis.access.audit.APPEND_ONLY_SQL": audit.APPEND_ONLY_SQL,
    "gis.serve.tilekey.TILE_KEY_FUNCTION_SQL": tilekey.TILE_KEY_FUNCTION_SQL,
}
"""Every statement of SQL the live code defines for the database to hold (functions, triggers)."""

_FUNCTION = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)\s*\(", re.IGNORECASE)
_TRIGGER = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?TRIGGER\s+(\w+)\s.*?\bON\s+(\w+)", re.IGNORECASE | re.DOTALL)


# --- (a) no migration imports the project ----------------------------------------------------------------------

def project_imports(source: str, filename: str = "<migration>") -> list[str]:
    """`line: module` of every import of a project package (or a relative import) in `source`, wherever it
    stands (module level, inside a function, or by importlib with a literal name)."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ["." * node.level + (node.module or "")]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")):
            names = [node.args[0].value]
        for name in names:
            if name.startswith(".") or name.partition(".")[0] in PROJECT_PACKAGES:
                found.append(f"{node.lineno}: {name}")
    return found


def test_no_migration_imports_project_code():
    files = sorted(VERSIONS.glob("*.py"))
    assert len(files) >= 8
    offending = {path.name: hits for path in files
                 if (hits := project_imports(path.read_text(encoding="utf-8"), str(path)))}
    assert not offending, ("migrations must hold the SQL they ran, pasted in, not import live code (a change to "
                           f"that code would rewrite history): {offending}")


@pytest.mark.parametrize("source", [
    "from gis.serve.tilekey import TILE_KEY_FUNCTION_SQL\n",
    "import gis.access.audit\n",
    "def upgrade():\n    from gis.tickets import routing_sql\n",
    "from . import helpers\n",
    "import importlib\nsql = importlib.import_module('gis.access.audit').APPEND_ONLY_SQL\n",
])
def test_the_import_check_finds_every_form(source):
    assert project_imports(source)


def test_the_import_check_passes_alembic_and_sqlalchemy():
    assert not project_imports("from alembic import op\nimport sqlalchemy as sa\nimport geoalchemy2\n")


# --- (b) the live SQL is what the newest migration installed ---------------------------------------------------

def live_objects(sql: str) -> list[tuple[str, str, str | None]]:
    """(kind, name, table) of every function and trigger that `sql` creates."""
    objects = [("function", name, None) for name in _FUNCTION.findall(sql)]
    objects += [("trigger", name, table) for name, table in _TRIGGER.findall(sql)]
    return objects


def _definitions(conn: psycopg.Connection, objects) -> dict[tuple[str, str], str | None]:
    """The catalog's own text of each object (pg_get_functiondef, pg_get_triggerdef), None where missing."""
    found: dict[tuple[str, str], str | None] = {}
    for kind, name, table in objects:
        if kind == "function":
            rows = conn.execute(
                "SELECT pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'public' AND p.proname = %s ORDER BY p.oid", (name,)).fetchall()
        else:
            rows = conn.execute(
                "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE t.tgname = %s "
                "AND t.tgrelid = to_regclass(%s) AND NOT t.tgisinternal", (name, f"public.{table}")).fetchall()
        found[(kind, name)] = "\n---\n".join(row[0] for row in rows) if rows else None
    return found


def newest_migration_installing(kind: str, name: str, url: str) -> str | None:
    """The newest revision whose file creates the function or trigger `name` (revisions newest first)."""
    pattern = re.compile(rf"\bCREATE\s+(?:OR\s+REPLACE\s+)?{kind}\s+{re.escape(name)}\b", re.IGNORECASE)
    for revision in ScriptDirectory.from_config(alembic_config(url)).walk_revisions():
        if pattern.search(Path(revision.path).read_text(encoding="utf-8")):
            return revision.revision
    return None


def _live_against_migrated(url: str, live: dict[str, str]) -> list[str]:
    """What differs between the freshly migrated database and the live SQL installed over it (rolled back)."""
    problems = []
    with psycopg.connect(url) as conn:
        for origin, sql in live.items():
            objects = live_objects(sql)
            assert objects, f"{origin} creates no function or trigger"
            migrated = _definitions(conn, objects)
            for kind, name, table in objects:
                if kind == "trigger":
                    conn.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            for kind, name, _ in objects:
                if kind == "function":
                    conn.execute(f"DROP FUNCTION IF EXISTS {name} CASCADE")
            conn.execute(sql)
            installed = _definitions(conn, objects)
            conn.rollback()
            for kind, name, _ in objects:
                if migrated[(kind, name)] != installed[(kind, name)]:
                    newest = newest_migration_installing(kind, name, url)
                    problems.append(
                        f"{kind} {name}: {origin} defines it otherwise than the migrations install it "
                        f"(newest migration that installs it: {newest or 'none'}). Add a migration that installs "
                        f"the new definition (paste its SQL in), do not edit an old one.\n"
                        f"  migrated:\n{migrated[(kind, name)]}\n  live code:\n{installed[(kind, name)]}")
    return problems


def test_the_live_sql_is_what_the_newest_migration_installed(empty_db):
    problems = _live_against_migrated(empty_db, LIVE_SQL)
    assert not problems, "\n\n".join(problems)


def test_a_live_function_changed_without_a_migration_is_told(empty_db):
    """The check itself: the live deadline function with one more hour of grace differs from the migrated one."""
    changed = routing_sql.TICKET_FUNCTIONS_SQL.replace(
        "SELECT coalesce(", "SELECT interval '1 hour' + coalesce(", 1)
    assert changed != routing_sql.TICKET_FUNCTIONS_SQL
    problems = _live_against_migrated(empty_db, {"changed routing": changed})
    assert len(problems) == 1 and problems[0].startswith("function ticket_due_at:")
    newest = newest_migration_installing("function", "ticket_due_at", empty_db)
    assert newest is not None and f"newest migration that installs it: {newest})" in problems[0]
    retabled = audit.APPEND_ONLY_SQL.replace("BEFORE TRUNCATE", "AFTER TRUNCATE")
    problems = _live_against_migrated(empty_db, {"changed audit": retabled})
    assert [p.partition(":")[0] for p in problems] == ["trigger audit_personal_read_no_truncate"]


def test_the_migrated_objects_of_the_live_code_exist(empty_db):
    """Every object the live SQL names is in a fresh database, created by a migration that says so."""
    with psycopg.connect(empty_db) as conn:
        for origin, sql in LIVE_SQL.items():
            for kind, name, _ in live_objects(sql):
                assert _definitions(conn, [(kind, name, _)])[(kind, name)], f"{kind} {name} of {origin} is missing"
                assert newest_migration_installing(kind, name, empty_db), f"no migration creates {kind} {name}"


# --- the live SQL files ship with the package -----------------------------------------------------------------

def test_every_sql_file_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"].get("*", [])
    sql_files = sorted((ROOT / "gis").rglob("*.sql"))
    assert sql_files, "the live SQL files are gone"
    for path in sql_files:
        assert any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns), \
            f"{path.relative_to(ROOT)} would be left out of the package: add *.sql to tool.setuptools.package-data"
