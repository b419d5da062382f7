"""Dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def get_engine(request: Request) -> AsyncEngine:
    return request.app.state.engine


async def get_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    conn = await request.app.state.engine.connect()
    try:
        yield conn
    finally:
        try:
            await conn.close()
        except DBAPIError:
            # The server went away after the answer was made (the response may be on the wire already):
            # discard the connection so the pool opens a fresh one, instead of failing a finished request.
            await conn.invalidate()


Engine = Annotated[AsyncEngine, Depends(get_engine)]
Connection = Annotated[AsyncConnection, Depends(get_connection)]
