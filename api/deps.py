"""Dependencies shared by the routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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


Engine = Annotated[AsyncEngine, Depends(get_engine)]
Connection = Annotated[AsyncConnection, Depends(get_connection)]
