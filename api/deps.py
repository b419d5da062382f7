"""Dependencies shared by the routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api import read_routing

log = logging.getLogger("gridgov.api")


def get_engine(request: Request) -> AsyncEngine:
    """The application's async engine (made at start-up in the lifespan), as a dependency."""
    return request.app.state.engine


async def release_connection(conn: AsyncConnection) -> None:
    """Give `conn` back to the pool; never raises for a connection the server dropped.

    This runs after the answer was made, often after it was sent: an error here must not reach the server, which
    would reset the client's keep-alive connection and fail its next request. When the server is gone, closing
    fails while rolling back, and SQLAlchemy has already invalidated and discarded the connection by then (the
    pool opens a fresh one); only a connection that is still attached is invalidated here."""
    try:
        await conn.close()
    except DBAPIError as error:
        log.info("a database connection was lost before it went back to the pool: %s", type(error).__name__)
        if not conn.closed:
            try:
                await conn.invalidate()
            except SQLAlchemyError as again:  # pragma: no cover - invalidating a live connection only logs
                log.warning("could not discard a lost database connection: %s", again)


async def get_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for the length of one request, given back to the pool afterwards even when the server dropped
    it."""
    conn = await request.app.state.engine.connect()
    try:
        yield conn
    finally:
        await release_connection(conn)


async def get_read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A connection for a read-only request: from a replica in rotation that has replayed the caller's writes,
    else from the primary (always the primary without GRIDGOV_DATABASE_READ_URLS). A replica that cannot be
    reached gives the primary's connection instead; a read that fails on a replica is answered again from the
    primary (api/read_routing.py)."""
    router = getattr(request.app.state, "read_router", None)
    replica = read_routing.replica_for(request.scope.get("state", {}), router)
    conn = None
    if replica is not None:
        try:
            conn = await replica.engine.connect()
        except Exception as error:  # noqa: BLE001 - any failure to connect sends the read to the primary
            router.take_out(replica, f"无法连接（{type(error).__name__}）")
            replica = None
    if conn is None:
        conn = await request.app.state.engine.connect()
    try:
        yield conn
    except Exception as error:
        if replica is not None:
            read_routing.note_failure(request.scope["state"], router, replica, error)
        raise
    finally:
        await release_connection(conn)


async def get_read_engine(request: Request) -> AsyncIterator[AsyncEngine]:
    """The engine for a read-only request's own connections (tiles, OGC): a replica's, chosen as by
    `get_read_connection`, or the primary's. Writes beside the read (the personal-data log) take `Engine`."""
    router = getattr(request.app.state, "read_router", None)
    replica = read_routing.replica_for(request.scope.get("state", {}), router)
    if replica is None:
        yield request.app.state.engine
        return
    try:
        yield replica.engine
    except Exception as error:
        read_routing.note_failure(request.scope["state"], router, replica, error)
        raise


Engine = Annotated[AsyncEngine, Depends(get_engine)]
Connection = Annotated[AsyncConnection, Depends(get_connection)]
ReadEngine = Annotated[AsyncEngine, Depends(get_read_engine)]
"""The engine of `get_read_engine`: a replica's for read-only routes when one is caught up, else the primary's."""
ReadConnection = Annotated[AsyncConnection, Depends(get_read_connection)]
"""A connection of `get_read_connection`: a replica's for read-only routes when one is caught up, else the
primary's."""
