"""Read replicas over HTTP: who the caller is for read-your-writes, the primary's WAL position after each write, and
a read that failed on a replica answered again from the primary (the caller sees no error).

Installed only when GRIDGOV_DATABASE_READ_URLS names replicas; without it nothing here runs and every request
goes to the primary as before. The routing rule itself is `gis/db/read_routing.py`."""

from __future__ import annotations

import hashlib

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.middleware import database_fault
from gis.db.read_routing import ReadRouter, Replica, read_urls

try:
    import asyncpg

    _DRIVER_ERRORS: tuple[type[BaseException], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError)
except ImportError:  # pragma: no cover - asyncpg is a dependency
    _DRIVER_ERRORS = ()

DATABASE_ERRORS = (sa_exc.DBAPIError, sa_exc.TimeoutError, ConnectionError, OSError, *_DRIVER_ERRORS)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FAILED = "replica_failed"
FORCE_PRIMARY = "force_primary"
READ_KEY = "read_key"


def caller_key(scope: Scope) -> str:
    """Whose reads a write pins: the bearer token's digest for a signed-in caller, the client address otherwise."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return "t:" + hashlib.sha256(value.strip()).hexdigest()[:32]
    client = scope.get("client")
    return "a:" + (client[0] if client else "")


async def open_router(primary: AsyncEngine) -> ReadRouter | None:
    """The app's read router, started (one poll done), or None when no read URL is configured."""
    urls = read_urls()
    if not urls:
        return None
    router = ReadRouter(primary, urls)
    await router.start()
    return router


async def close_router(router: ReadRouter | None) -> None:
    """Stop the router's polling and close its pools (nothing for None)."""
    if router is not None:
        await router.close()


def replica_for(state, router: ReadRouter | None) -> Replica | None:
    """The replica this request's reads go to, or None for the primary (no router, a retry, or not caught up)."""
    if router is None or state.get(FORCE_PRIMARY):
        return None
    return router.choose(state.get(READ_KEY))


def note_failure(state: dict, router: ReadRouter, replica: Replica, error: BaseException) -> None:
    """A read on `replica` raised `error`: mark the request for an answer from the primary when the error is the
    database's (not bad input, not a statement timeout, which the primary would meet as well); a replica that is
    away leaves the rotation at once."""
    fault = database_fault(error)
    if fault is not None and fault[0] in (400, 504):
        return
    if fault is None and not isinstance(error, DATABASE_ERRORS):
        return
    state[FAILED] = True
    if fault is not None and fault[0] == 503:
        router.take_out(replica, f"读取失败（{type(error).__name__}）")


class ReadRoutingMiddleware:
    """Records each write's WAL position for its caller; replays a read whose replica failed on the primary."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        router = getattr(scope["app"].state, "read_router", None) if "app" in scope else None
        if scope["type"] != "http" or router is None:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        key = state[READ_KEY] = caller_key(scope)
        if scope["method"] in WRITE_METHODS:
            await self._write(router, key, scope, receive, send)
        else:
            await self._read(state, scope, receive, send)

    async def _write(self, router: ReadRouter, key: str, scope: Scope, receive: Receive, send: Send) -> None:
        router.writes.begin(key)
        recorded = False

        async def send_after_recording(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                # The handler has committed by now: the position covers the write before the caller can read.
                recorded = True
                router.writes.end(key, await router.primary_position())
            await send(message)

        try:
            await self.app(scope, receive, send_after_recording)
        finally:
            if not recorded:
                router.writes.end(key, await router.primary_position())

    async def _read(self, state: dict, scope: Scope, receive: Receive, send: Send) -> None:
        started = replay = False

        async def send_unless_failed(message: Message) -> None:
            nonlocal started, replay
            if message["type"] == "http.response.start" and state.get(FAILED):
                replay = True
            if replay:
                return
            started = True
            await send(message)

        try:
            await self.app(scope, receive, send_unless_failed)
        except Exception:
            if started or not state.get(FAILED):
                raise
            replay = True
        if not replay:
            return
        state.pop(FAILED, None)
        state[FORCE_PRIMARY] = True
        body_sent = False

        async def receive_again() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return await receive()

        await self.app(scope, receive_again, send)


def install(app) -> None:
    """Add the middleware when replicas are configured (call once in create_app, after the other middleware)."""
    if read_urls():
        app.add_middleware(ReadRoutingMiddleware)
