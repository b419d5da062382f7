"""Bulk exports stream from the database: `/tickets.csv` sends its header before the rows are read, the rows
follow in chunks through a server-side cursor, and other routes are answered while an export is still being
produced — shown by ordering, not by timing: the client stops reading after the first bytes, and with the
export's transaction still open in the database, `/layers` and `/health` answer; then the export completes
with every ticket, the same columns, the BOM, and its read logged (before the first row left)."""

from __future__ import annotations

import asyncio
import csv
import io
import socket
import time

import psycopg
import pytest
from conftest import LiveServer
from sqlalchemy.ext.asyncio import create_async_engine

from gis.access import auth
from gis.db.engine import with_driver

PASSWORD = "correct horse battery"
PADDING = "，楼道漏水" * 500
"""Added to every description: about 7.5 KB a row, so the export (some 15 MB) cannot fit in socket buffers."""
CLIENT_RECEIVE_BUFFER = 4096
EXPORT_SQL_MARK = "%SELECT t.id AS id%"
"""How the export's statement begins (pg_stat_activity keeps only the first kilobyte of a statement)."""


@pytest.fixture(scope="module")
def world(city_db):
    with psycopg.connect(city_db) as conn:
        conn.execute("UPDATE complaint SET description = coalesce(description, '') || %s", [PADDING])
        tickets = conn.execute("SELECT count(*) FROM ticket").fetchone()[0]

    async def make_admin() -> None:
        engine = create_async_engine(with_driver(city_db, "asyncpg"))
        async with engine.begin() as conn:
            await auth.create_user(conn, "export-admin", PASSWORD, "admin")
        await engine.dispose()

    asyncio.run(make_admin())
    server = LiveServer(city_db)
    with server.client() as client:
        token = client.post("/auth/login", json={"username": "export-admin", "password": PASSWORD}).json()[
            "access_token"]
    yield {"url": city_db, "server": server, "token": token, "tickets": tickets}
    server.stop()


def open_exports(url: str) -> int:
    """Backends of the app inside a transaction that read tickets: exports under way (the app holds no other
    transaction open between requests, and each check runs while no other request is in flight)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend' AND xact_start IS NOT NULL AND query LIKE %s",
            [EXPORT_SQL_MARK]).fetchone()[0]


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.05)


class SlowReader:
    """A raw HTTP/1.1 client with a 4 KB receive buffer that reads only when told to: a client that has not
    read the rest of the export yet. (httpx's sockets let the kernel buffer megabytes on its own.)"""

    def __init__(self, port: int, path: str, token: str):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RECEIVE_BUFFER)
        self.sock.settimeout(60)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                          f"Connection: close\r\n\r\n".encode())
        self.raw = bytearray()
        while b"\r\n\r\n" not in self.raw:
            self._recv()
        head, _, rest = bytes(self.raw).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        self.raw = bytearray(rest)

    def _recv(self) -> bool:
        chunk = self.sock.recv(65536)
        self.raw += chunk
        return bool(chunk)

    def read_some(self, at_least: int) -> None:
        while len(self.raw) < at_least and self._recv():
            pass

    def read_all(self) -> bytes:
        while self._recv():
            pass
        self.sock.close()
        return dechunk(bytes(self.raw)) if self.headers.get("transfer-encoding") == "chunked" else bytes(self.raw)

    def close(self) -> None:
        self.sock.close()


def dechunk(data: bytes) -> bytes:
    out, position = bytearray(), 0
    while True:
        end = data.index(b"\r\n", position)
        size = int(data[position:end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[end + 2:end + 2 + size]
        position = end + 2 + size + 2


def audit_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT username, endpoint, record_count, record_ids FROM audit_personal_read "
                            "WHERE endpoint = '/tickets.csv' ORDER BY id").fetchall()


def test_other_routes_answer_while_an_export_is_being_produced(world):
    server = world["server"]
    logged_before = len(audit_rows(world["url"]))
    reader = SlowReader(server.port, "/tickets.csv", world["token"])
    try:
        assert reader.status == 200 and reader.headers["content-type"].startswith("text/csv")
        reader.read_some(16)
        # The header leaves before the rows' statement starts (the connection may first look up its types), and
        # the client reads no further, so the export comes to hold its cursor open, still reading tickets ...
        wait_until(lambda: open_exports(world["url"]) == 1)
        # ... its read was logged before any row left ...
        rows = audit_rows(world["url"])
        assert len(rows) == logged_before + 1 and rows[-1][:3] == ("export-admin", "/tickets.csv", world["tickets"])
        # ... and meanwhile other routes answer, with and without the database.
        with server.client() as other:
            assert other.get("/layers").status_code == 200
            assert other.get("/health").json()["status"] == "ok"
            assert other.get("/layers/street.geojson").status_code == 200
        assert open_exports(world["url"]) == 1, "the export finished before the other routes were answered"
        body = reader.read_all()
    finally:
        reader.close()

    assert body.startswith("\ufeff".encode())
    records = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    header, data = records[0], records[1:]
    with server.client(headers={"Authorization": f"Bearer {world['token']}"}) as client:
        listed = client.get("/tickets", params={"limit": 1, "sort": "id"}).json()["items"][0]
    assert header == list(listed)
    assert len(data) == world["tickets"] and len(set(row[0] for row in data)) == world["tickets"]
    first = dict(zip(header, data[0]))
    assert int(first["id"]) == listed["id"] and first["description"].endswith(PADDING)
    assert {str(int(row[0])) for row in data} == set(audit_rows(world["url"])[-1][3])
    wait_until(lambda: open_exports(world["url"]) == 0)


def test_a_client_leaving_mid_export_ends_its_transaction(world):
    server = world["server"]
    reader = SlowReader(server.port, "/tickets.csv", world["token"])
    reader.read_some(16)
    wait_until(lambda: open_exports(world["url"]) == 1)  # the header leaves before the rows' cursor opens
    reader.close()
    wait_until(lambda: open_exports(world["url"]) == 0)
    # the connection went back to the pool in working order
    with server.client(headers={"Authorization": f"Bearer {world['token']}"}) as client:
        again = client.get("/tickets.csv")
        assert again.status_code == 200
        assert len(list(csv.reader(io.StringIO(again.content.decode("utf-8-sig"))))) == world["tickets"] + 1


def test_a_bad_filter_is_refused_before_the_stream_starts(world):
    with world["server"].client(headers={"Authorization": f"Bearer {world['token']}"}) as client:
        refused = client.get("/tickets.csv", params={"bbox": "a,b,c,d"})
        assert refused.status_code == 400
        assert refused.headers["content-type"].startswith("application/json")
        assert client.get("/tickets.csv").status_code == 200


# --- analytics figures: rendered in a worker thread, never on the event loop ---------------------------------

@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_analytics_figures_are_rendered_off_the_event_loop(city_db, monkeypatch, fmt):
    import threading

    import httpx
    from openpyxl import load_workbook

    from api.main import create_app
    from gis.analytics.figures import Figure

    rendered_on: list[tuple[str, bool]] = []
    render = Figure.render

    def recording_render(self, fmt):
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        rendered_on.append((threading.current_thread().name, on_loop))
        return render(self, fmt)

    monkeypatch.setattr(Figure, "render", recording_render)

    async def scenario() -> httpx.Response:
        app = create_app(city_db)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gridgov.test") as client:
                return await client.get("/analytics/coverage", params={"level": "community", "format": fmt})

    answer = asyncio.run(scenario())
    assert answer.status_code == 200, answer.text
    assert int(answer.headers["content-length"]) == len(answer.content) > 100
    assert answer.headers["content-disposition"].endswith(f'.{fmt}"')
    if fmt == "xlsx":
        assert load_workbook(io.BytesIO(answer.content)).active.max_row > 1
    else:
        assert answer.content.startswith("\ufeff".encode()) and answer.content.count(b"\n") > 1
    assert len(rendered_on) == 1 and rendered_on[0][1] is False, rendered_on
