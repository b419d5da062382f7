"""Ticket reads return the ids of what they carry (for the personal-data log) instead of filling a caller's list."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from contextlib import aclosing

from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gis.access.auth import Principal
from gis.db.engine import with_driver
from gis.tickets import queries
from gis.tickets.filters import TicketFilter

ADMIN = Principal(role="admin", username="a", user_id=1)


def test_reads_return_the_ids_they_carry(city_db):
    async def read() -> tuple:
        engine = create_async_engine(with_driver(city_db, "asyncpg"), poolclass=NullPool)
        async with engine.connect() as conn:
            page = await queries.list_tickets(conn, ADMIN, TicketFilter(), "id", 40, 0)
            features = await queries.tickets_geojson(conn, ADMIN, TicketFilter(states=["open"]), "id", 30, 0)
            export = await queries.tickets_csv(conn, ADMIN, TicketFilter(states=["open"]))
            announced = list(export.ids)  # known before any row is read
            async with aclosing(export):
                body = b"".join([chunk async for chunk in export.chunks])
            in_transaction = conn.in_transaction()
        await engine.dispose()
        return page, features, announced, body, in_transaction

    page, features, announced, body, in_transaction = asyncio.run(read())
    items = json.loads(page.body)["items"]
    assert len(items) == 40 and sorted(page.ids) == sorted(item["id"] for item in items)
    collection = json.loads(features.body)["features"]
    assert collection and sorted(features.ids) == sorted(feature["id"] for feature in collection)
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows and sorted(announced) == sorted(int(row["id"]) for row in rows)
    assert not in_transaction  # closing the export ended its snapshot
