"""Accounts for tests, created through the app's own account function (Argon2id hash, scope rows, audit) from
synchronous test code.

The coroutine runs in a thread of its own: a module whose sync Playwright has started keeps an event loop in the
test thread, where `asyncio.run` refuses to start another."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, NamedTuple

from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gis.db.engine import with_driver


class Account(NamedTuple):
    """One account: its role and the codes of its scope; a property company's staff name their company."""

    username: str
    role: str
    scope: tuple[str, ...] | list[str] = ()
    company_id: int | None = None
    display_name: str | None = None


def create_users(url: str, password: str, accounts: Iterable[Account | tuple]) -> None:
    """Create every account in `accounts` (Account or a tuple in its order) with `password`, in one transaction."""
    from gis.access import auth

    wanted = [Account(*account) for account in accounts]

    async def create() -> None:
        engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                for account in wanted:
                    await auth.create_user(conn, account.username, password, account.role, list(account.scope),
                                           account.company_id, account.display_name)
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, create()).result()
