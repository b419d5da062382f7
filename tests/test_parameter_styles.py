"""One parameter style per kind of database work: the batch statements (psycopg, bulk) are written with
`%(name)s`, the request statement (async SQLAlchemy) with `:name`, and nothing converts one into the other."""

from __future__ import annotations

import asyncio
import re

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gis.db.engine import libpq_url, with_driver
from gis.intake import placement

SQLALCHEMY_BIND = re.compile(r"(?<![:\w\\]):([a-z_][a-z0-9_]*)")
"""A `:name` bind as SQLAlchemy's text() reads it (a cast `::type` is not one)."""
PSYCOPG_BIND = re.compile(r"%\((\w+)\)s")


def batch_statements() -> dict[str, str]:
    """Every statement the importer runs through psycopg, for both plans."""
    statements = {"unplaced": placement.UNPLACED_INSERT_SQL, "duplicate keys": placement.DUPLICATE_KEYS_SQL,
                  "address points": placement.ADDRESS_POINTS_BATCH_SQL,
                  "duplicate bounds": placement.DUPLICATE_BOUNDS_SQL,
                  "duplicate reach": placement.DUPLICATE_REACH_ROWS_SQL}
    for outer in (False, True):
        statements[f"hit {outer}"] = placement.hit_insert_sql("intake_stage", outer)
        statements[f"snap {outer}"] = placement.snap_insert_sql(outer)
        for resolved in (False, True):
            statements[f"store {outer} {resolved}"] = placement.store_sql("intake_stage", outer, resolved)
    for open_filter in ("", placement.CLOSED_TICKET_FILTER):
        statements[f"duplicates {bool(open_filter)}"] = placement.duplicates_sql("SELECT 1", open_filter)
        statements[f"duplicates batch {bool(open_filter)}"] = placement.duplicates_batch_sql(open_filter)
    return statements


def test_batch_statements_are_written_for_psycopg():
    for name, sql in batch_statements().items():
        assert not SQLALCHEMY_BIND.findall(sql), f"{name}: SQLAlchemy binds in a psycopg statement"
        # every % is a placeholder, so psycopg never meets a stray one
        assert sql.count("%") == len(PSYCOPG_BIND.findall(sql)), name
    assert set(PSYCOPG_BIND.findall(placement.snap_insert_sql(True))) == {"snap_m", "snap_deg"}
    assert set(PSYCOPG_BIND.findall(placement.store_sql("intake_stage", False))) == {"snap_m"}
    assert set(PSYCOPG_BIND.findall(placement.duplicates_batch_sql(""))) == {
        "radius_m", "radius_deg", "window_days", "low", "high", "categories", "xmin", "ymin", "xmax", "ymax"}


def test_request_statements_are_written_for_sqlalchemy():
    for sql in (placement.one_request_sql(""), placement.one_request_sql(placement.CLOSED_TICKET_FILTER),
                placement.ADDRESS_POINTS_SQL):
        assert "%(" not in sql
    binds = set(text(placement.one_request_sql("")).compile().params)
    assert {"key_hash", "snap_m", "snap_deg", "radius_m", "radius_deg", "window_days"} <= binds
    assert set(placement.STAGE_COLUMN_NAMES) <= binds
    assert set(text(placement.ADDRESS_POINTS_SQL).compile().params) == {"compounds", "numbers"}


def test_no_conversion_between_styles():
    assert not hasattr(placement, "psycopg_params")
    # the shared fragments differ by their placeholders only
    assert (placement.review_reason_sql("%(snap_m)s").replace("%(snap_m)s", "?")
            == placement.review_reason_sql(":snap_m").replace(":snap_m", "?"))
    assert (placement.ADDRESS_POINTS_BATCH_SQL.replace("%(compounds)s", ":compounds").replace("%(numbers)s", ":numbers")
            == placement.ADDRESS_POINTS_SQL)


def test_both_renderings_find_the_same_points(city_db):
    with psycopg.connect(libpq_url(city_db)) as conn:
        pairs = conn.execute("SELECT compound_code, number FROM building WHERE valid_to IS NULL "
                             "ORDER BY code LIMIT 5").fetchall()
        compounds = [c for c, _ in pairs] + [pairs[0][0], "000000000000C0000"]
        numbers = [n for _, n in pairs] + [None, None]
        batch = conn.execute(placement.ADDRESS_POINTS_BATCH_SQL, {"compounds": compounds, "numbers": numbers}
                             ).fetchall()

    async def request() -> list[tuple]:
        engine = create_async_engine(with_driver(city_db, "asyncpg"), poolclass=NullPool)
        async with engine.connect() as conn:
            rows = (await conn.execute(text(placement.ADDRESS_POINTS_SQL),
                                       {"compounds": compounds, "numbers": numbers})).all()
        await engine.dispose()
        return [tuple(row) for row in rows]

    found = asyncio.run(request())
    assert len(batch) == len(compounds) and sorted(found) == sorted(batch)
    assert all(lon is not None for _, _, lon, _ in batch[:-1]) and batch[-1][2] is None
