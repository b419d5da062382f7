"""A database connection lost between a request's query and the teardown of its connection: the answer stands, the
pool recovers, and nothing escapes to the HTTP server (which would reset the client's keep-alive connection and
fail its next request, whatever route that is).

The loss is made deterministic: the route terminates its own backend with `pg_terminate_backend(pid, timeout)`,
which returns only once the backend is gone, so the teardown always meets a dead connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from types import SimpleNamespace

import pytest
import uvicorn
from sqlalchemy import text

from api.deps import Connection, get_connection
from api.middleware import HardeningMiddleware
from gis.db.engine import async_engine

TERMINATE_SQL = text("SELECT pg_terminate_backend(:pid, 10000)")


async def _terminate(engine, pid: int) -> None:
    async with engine.connect() as other:
        assert (await other.execute(TERMINATE_SQL, {"pid": pid})).scalar_one() is True


def test_a_connection_lost_before_teardown_goes_back_without_an_error(empty_db):
    """The dependency itself, as FastAPI drives it: the teardown must not raise, and the pool must recover."""

    async def scenario() -> None:
        engine = async_engine(empty_db)
        request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(engine=engine)))
        try:
            dependency = contextlib.asynccontextmanager(get_connection)(request)
            conn = await dependency.__aenter__()
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await _terminate(engine, pid)
            # Old code: conn.close() failed, then conn.invalidate() raised ResourceClosedError from here.
            await dependency.__aexit__(None, None, None)
            assert engine.pool.checkedout() == 0
            async with engine.connect() as fresh:
                assert (await fresh.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
        finally:
            await engine.dispose()

    asyncio.run(scenario())


class EscapeRecorder:
    """Outermost ASGI wrapper: records any exception the app lets out to the server."""

    def __init__(self, app):
        self.app = app
        self.escaped: list[BaseException] = []

    async def __call__(self, scope, receive, send):
        try:
            await self.app(scope, receive, send)
        except BaseException as error:
            self.escaped.append(error)
            raise


@pytest.fixture
def teardown_server(empty_db):
    """The real app under uvicorn in a thread, with one extra route that loses its own backend after its query."""
    from api.main import create_app

    app = create_app(empty_db)

    @app.get("/test/backend-lost-before-teardown")
    async def backend_lost(conn: Connection) -> dict:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await _terminate(app.state.engine, pid)
        return {"pid": pid}

    recorder = EscapeRecorder(app)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(recorder, host="127.0.0.1", port=port, log_level="critical",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(300):
        if server.started:
            started.set()
            break
        thread.join(0.1)
    assert started.is_set(), "uvicorn did not start"
    yield SimpleNamespace(port=port, recorder=recorder)
    server.should_exit = True
    thread.join(10)


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length from a keep-alive socket; EOF raises ConnectionError."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the keep-alive connection")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-body")
        rest += chunk
    buffer[:] = rest[length:]
    return status, rest[:length]


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n".encode()


def test_the_next_request_on_the_keep_alive_connection_is_answered(teardown_server):
    with socket.create_connection(("127.0.0.1", teardown_server.port), timeout=30) as sock:
        buffer = bytearray()
        sock.sendall(_get("/health"))
        assert _read_response(sock, buffer)[0] == 200
        sock.sendall(_get("/test/backend-lost-before-teardown"))
        status, _ = _read_response(sock, buffer)
        assert status == 200
        # The same connection, straight away: on the old code the server reset it here.
        for path in ("/health", "/layers", "/health"):
            sock.sendall(_get(path))
            assert _read_response(sock, buffer)[0] == 200, path
    assert teardown_server.recorder.escaped == []


# --- the middleware guard on its own ------------------------------------------------------------------------

def _run_asgi(app) -> tuple[list[dict], BaseException | None]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    async def call():
        scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""}
        try:
            await app(scope, receive, send)
        except Exception as error:  # noqa: BLE001
            return error
        return None

    return sent, asyncio.run(call())


def test_an_error_after_the_response_ended_is_logged_not_raised(caplog):
    async def finished_then_failed(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        raise RuntimeError("teardown failed")

    with caplog.at_level(logging.WARNING, logger="gridgov.api"):
        sent, error = _run_asgi(HardeningMiddleware(finished_then_failed))
    assert error is None
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert any("after the response" in record.getMessage() and record.exc_info for record in caplog.records)


def test_an_error_in_the_middle_of_a_body_still_reaches_the_server():
    """A truncated answer must not pass for a complete one: the server has to drop the connection."""

    async def failed_mid_body(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("stream broke")

    sent, error = _run_asgi(HardeningMiddleware(failed_mid_body))
    assert isinstance(error, RuntimeError)
    assert len(sent) == 2
