"""The server killed (SIGKILL) in the middle of a batch import and of a bulk assignment, restarted, and the same
request sent again: every row of the file ends exactly once (one complaint, one ticket), every ticket is assigned
exactly once in its history.

"Mid-way" is made certain rather than left to timing: the test holds a row lock that the request's transaction
needs after it has written its rows, waits until PostgreSQL shows the request waiting on it, kills the server,
then lets go. The short form imports a few thousand rows in one chunk; GRIDGOV_FUZZ=full (`make soak`) also
imports more than one chunk (50,000 rows each) and kills the server after the first chunk was committed.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid

import httpx
import psycopg
import pytest
from conftest import LiveServer

from gis.db.engine import libpq_url

FULL = os.environ.get("GRIDGOV_FUZZ") == "full"
PASSWORD = "kill test password"
SHORT_ROWS = 4000
FULL_ROWS = 60_000


@pytest.fixture
def servers():
    """Every server a test starts, stopped at its end whatever happened."""
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.stop()


def start(servers: list, url: str) -> LiveServer:
    server = LiveServer(url)
    servers.append(server)
    return server


def create_admin(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from gis.access import auth
    from gis.db.engine import with_driver

    async def create():
        engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool)
        async with engine.begin() as conn:
            await auth.create_user(conn, "kill-admin", PASSWORD, "admin")
        await engine.dispose()

    asyncio.run(create())


def admin_headers(server: LiveServer) -> dict:
    with server.client() as client:
        token = client.post("/auth/login", json={"username": "kill-admin", "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def one(url: str, statement: str, params=None):
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        return conn.execute(statement, params).fetchone()


def wait_for(condition, what: str, timeout: float = 60.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


class InFlight:
    """A request sent from a thread, expected to die with the server."""

    def __init__(self, method: str, url: str, **kwargs):
        self.outcome: object = None
        self.thread = threading.Thread(target=self._send, args=(method, url), kwargs=kwargs, daemon=True)
        self.thread.start()

    def _send(self, method, url, **kwargs):
        try:
            self.outcome = httpx.request(method, url, timeout=120, **kwargs)
        except httpx.HTTPError as error:
            self.outcome = error

    def join(self) -> object:
        self.thread.join(30)
        return self.outcome


def kill(server: LiveServer) -> None:
    server.process.kill()  # SIGKILL: no shutdown handlers, no graceful close
    server.process.wait(10)


def waiting_on_lock(url: str, statement_start: str) -> bool:
    row = one(url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND wait_event_type = 'Lock' AND ltrim(query, E' \\n\\t') LIKE %s", [statement_start + "%"])
    return row[0] > 0


def all_sessions_ended(url: str) -> bool:
    """The killed server's connections are gone (their open transactions rolled back)."""
    row = one(url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
    return row[0] == 0


def import_counts(url: str) -> dict:
    keys = ("complaints", "hotline", "distinct_keys", "tickets", "without_one_ticket")
    row = one(url, """
        SELECT (SELECT count(*) FROM complaint),
               (SELECT count(*) FROM complaint WHERE source = 'hotline'),
               (SELECT count(DISTINCT (source, external_id)) FROM complaint WHERE source = 'hotline'),
               (SELECT count(*) FROM ticket),
               (SELECT count(*) FROM complaint c
                WHERE (SELECT count(*) FROM ticket t WHERE t.complaint_id = c.id) <> 1)""")
    return dict(zip(keys, row))


def post_import(server: LiveServer, headers: dict, path) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=300) as client, open(path, "rb") as handle:
        return client.post("/complaints/imports", headers=headers, files={"file": ("export.csv", handle, "text/csv")})


@pytest.mark.parametrize("when", ["inside the chunk"] + (["after the first chunk"] if FULL else []))
def test_import_killed_and_run_again_keeps_every_row_exactly_once(fresh_city_db, tmp_path, when, servers):
    from fixtures.messy_export import write_messy_export

    url = fresh_city_db
    create_admin(url)
    rows = SHORT_ROWS if when == "inside the chunk" else FULL_ROWS
    export = write_messy_export(url, tmp_path / "export.csv", rows=rows, seed=11)
    new_complaints = rows - export.expected["rejected"] - export.expected["duplicate"]
    before = import_counts(url)
    last_batch = one(url, "SELECT coalesce(max(id), 0) FROM intake_batch")[0]

    server = start(servers, url)
    headers = admin_headers(server)
    with open(export.path, "rb") as handle:
        content = handle.read()
    flight = InFlight("POST", f"{server.url}/complaints/imports", headers=headers,
                      files={"file": ("export.csv", content, "text/csv")})
    batch_id = wait_for(lambda: one(url, "SELECT max(id) FROM intake_batch WHERE id > %s", [last_batch])[0],
                        "the import to start")
    if when == "inside the chunk":
        # Hold the batch row (NO KEY: the complaints' references to it may still be checked): the chunk's
        # transaction stores its complaints and tickets, then waits here to move the batch's counters.
        holder = psycopg.connect(libpq_url(url))
        holder.execute("SELECT 1 FROM intake_batch WHERE id = %s FOR NO KEY UPDATE", [batch_id])
        wait_for(lambda: waiting_on_lock(url, "UPDATE intake_batch SET rows_read"), "the import to block", 120)
        kill(server)
        holder.rollback()
        holder.close()
    else:
        wait_for(lambda: one(url, "SELECT rows_read FROM intake_batch WHERE id = %s", [batch_id])[0] > 0,
                 "the first chunk to commit", 300, 0.05)
        kill(server)
    assert not isinstance(flight.join(), httpx.Response), "the import answered although the server was killed"
    wait_for(lambda: all_sessions_ended(url), "the killed server's sessions to end")

    killed = import_counts(url)
    state, read = one(url, "SELECT state, rows_read FROM intake_batch WHERE id = %s", [batch_id])
    assert state == "running", "a killed import cannot have marked its batch"
    if when == "inside the chunk":
        assert killed == before and read == 0, "an uncommitted chunk left rows behind"
    else:
        assert killed["complaints"] > before["complaints"] and read > 0
    assert killed["without_one_ticket"] == 0

    server = start(servers, url)
    try:
        # nothing holds the killed import's lock any more: reading its batch settles it as failed
        with httpx.Client(base_url=server.url, headers=headers) as client:
            settled = client.get(f"/complaints/imports/{batch_id}").json()
        assert settled["state"] == "failed" and settled["finished_at"] is not None
        again = post_import(server, headers, export.path)  # the token outlives the server: it is in the database
        assert again.status_code == 200, again.text
        report = again.json()
        assert report["rows_read"] == rows and report["rejected"] == export.expected["rejected"]
        assert report["imported"] == new_complaints - (killed["complaints"] - before["complaints"])
        once_more = post_import(server, headers, export.path).json()
        assert once_more["imported"] == 0 and once_more["rows_read"] == rows
    finally:
        server.stop()

    after = import_counts(url)
    assert after["complaints"] - before["complaints"] == new_complaints
    assert after["hotline"] == after["distinct_keys"], "a hotline ticket number is held twice"
    assert after["tickets"] - before["tickets"] == new_complaints
    assert after["without_one_ticket"] == 0


def test_bulk_assignment_killed_and_retried_assigns_each_ticket_exactly_once(fresh_city_db, servers):
    url = fresh_city_db
    create_admin(url)
    note = f"bulk {uuid.uuid4().hex[:8]}"
    community = one(url, "SELECT community_code FROM complaint GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0]
    # The small city's year of history is mostly closed: a day of new complaints gives open tickets to assign.
    one(url, """
        INSERT INTO complaint (source, category_code, description, address, reported_at, geom, match_level,
                               placement, micro_grid_id, micro_grid_code, grid_code, community_code, street_code,
                               compound_code, building_code, reporter_name, reporter_phone)
        SELECT 'app', category_code, description, address, now() - interval '1 hour', geom, match_level,
               placement, micro_grid_id, micro_grid_code, grid_code, community_code, street_code,
               compound_code, building_code, reporter_name, reporter_phone
        FROM complaint WHERE community_code = %s ORDER BY id LIMIT 300 RETURNING 1""", [community])
    server = start(servers, url)
    headers = admin_headers(server)
    with server.client() as client:
        listed = client.get("/tickets", headers=headers, params={
            "community": community, "state": "reported,registered,dispatched,in_progress", "limit": 1000,
            "sort": "id"}).json()["items"]
    assert len(listed) >= 20
    versions = {t["id"]: t["version"] for t in listed}
    body = {"assignee": {"kind": "community", "code": community}, "ticket_ids": list(versions),
            "versions": {str(k): v for k, v in versions.items()}, "note": note}

    # Lock the last ticket: the UPDATE has changed the others in its transaction when it waits for this one.
    holder = psycopg.connect(libpq_url(url))
    holder.execute("SELECT 1 FROM ticket WHERE id = %s FOR UPDATE", [max(versions)])
    flight = InFlight("POST", f"{server.url}/tickets/assign", headers=headers, json=body)
    wait_for(lambda: waiting_on_lock(url, "WITH wanted AS"), "the assignment to block")
    kill(server)
    holder.rollback()
    holder.close()
    assert not isinstance(flight.join(), httpx.Response)
    wait_for(lambda: all_sessions_ended(url), "the killed server's sessions to end")

    events = "SELECT count(*) FROM ticket_event WHERE note = %s"
    assert one(url, events, [note])[0] == 0, "a killed assignment left history behind"
    assert current_versions(url, versions) == versions, "a killed assignment changed a ticket"

    server = start(servers, url)
    try:
        with server.client() as client:
            retried = client.post("/tickets/assign", headers=headers, json=body)
            assert retried.status_code == 200 and retried.json()["assigned"] == len(versions), retried.text
            # A client that lost this answer too and retries once more is refused: the versions moved on.
            assert client.post("/tickets/assign", headers=headers, json=body).status_code == 409
    finally:
        server.stop()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        per_ticket = dict(conn.execute("SELECT ticket_id, count(*) FROM ticket_event WHERE note = %s GROUP BY 1",
                                       [note]).fetchall())
    assert per_ticket == {ticket_id: 1 for ticket_id in versions}
    moved = one(url, "SELECT count(*) FROM ticket WHERE id = ANY(%s) AND state = 'dispatched' "
                     "AND assignee_code = %s", [list(versions), community])[0]
    assert moved == len(versions)
    assert current_versions(url, versions) == {ticket_id: version + 1 for ticket_id, version in versions.items()}


def current_versions(url: str, versions: dict[int, int]) -> dict[int, int]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        return dict(conn.execute("SELECT id, version FROM ticket WHERE id = ANY(%s)", [list(versions)]).fetchall())
