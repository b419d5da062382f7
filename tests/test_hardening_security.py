"""Security over real HTTP on the small city: login rate limiting (per username and per address, held in the
database across worker processes), the personal-data access log, expired and revoked tokens, and the security
matrix — every route of the app × public, planner, grid worker of grid A, street office of another street and
administrator: no server error, no personal data for the public or planners, and no ticket or complaint of
another grid for the grid worker through any list, export, tile or OGC endpoint."""

from __future__ import annotations

import concurrent.futures
import csv
import io
import itertools
import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

import httpx
import mapbox_vector_tile
import pytest
from conftest import ROOT, LiveServer
from test_tickets_support import sql

from tests.users import create_users

PASSWORD = "matrix password 1"
ROLES = ("public", "planner", "grid", "street", "admin")
PERSONAL_KEYS = {"reporter_name", "reporter_phone", "phone", "contact_phone", "secretary_phone", "leader_phone"}
API_DOCUMENTS = {"/openapi.json", "/ogc/api", "/docs", "/tiles/{layer}.json", "/tiles/{layer}/tilejson.json"}
"""Documents that describe the API (field names in schemas and TileJSON), not data: their keys are not checked."""
PUBLIC_INTERFACES = {
    # GeoReport v2 is the anonymous, anonymised citizen interface: it answers the same to every caller, signed
    # in or not, so a grid worker's token neither widens nor narrows it.
    "/open311/v2/requests.{fmt}", "/open311/v2/requests/{name}", "/open311/v2/tokens/{name}",
    "/open311/v2/requests/export.{fmt}",
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


# --- the world: users of each role, ids by grid, the people's phone numbers -----------------------------------

def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return z, x, y


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/auth/login", json={"username": username, "password": password})


@dataclass
class World:
    url: str
    server: LiveServer
    grid_a: str
    street_a: str
    street_b: str
    tokens: dict[str, str | None]
    tickets_by_grid: dict[str, set[int]]
    complaints_by_grid: dict[str, set[int]]
    street_of_grid: dict[str, str]
    phones: set[str]
    values: dict = field(default_factory=dict)

    def headers(self, role: str) -> dict:
        token = self.tokens[role]
        return {"Authorization": f"Bearer {token}"} if token else {}

    def outside(self, role: str) -> tuple[set[int], set[int]]:
        """(ticket ids, complaint ids) outside the scope of the grid worker (grid A) or the street (street B)."""
        inside = (lambda grid: grid == self.grid_a) if role == "grid" else (
            lambda grid: self.street_of_grid.get(grid) == self.street_b)
        return (set().union(*(ids for grid, ids in self.tickets_by_grid.items() if not inside(grid))),
                set().union(*(ids for grid, ids in self.complaints_by_grid.items() if not inside(grid))))


@pytest.fixture(scope="module")
def world(city_db, live_app) -> World:
    url = city_db
    grid_a, street_a = sql(url, """
        SELECT grid_code, street_code FROM ticket WHERE grid_code IS NOT NULL
        GROUP BY 1, 2 ORDER BY count(*) DESC, 1 LIMIT 1""")[0]
    street_b = sql(url, "SELECT min(code) FROM street WHERE valid_to IS NULL AND code <> %s", [street_a])[0][0]
    assert street_b, "the small city needs two streets"
    create_users(url, PASSWORD, [("m-planner", "planner", []), ("m-grid", "grid_worker", [grid_a]),
                       ("m-street", "street", [street_b]), ("m-admin", "admin", [])])
    usernames = {"planner": "m-planner", "grid": "m-grid", "street": "m-street", "admin": "m-admin"}
    with live_app.client() as client:
        tokens = {"public": None, **{role: login(client, name).json()["access_token"]
                                     for role, name in usernames.items()}}
    point_a = sql(url, "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grid "
                       "WHERE code = %s AND valid_to IS NULL) s", [grid_a])[0]
    # A ticket of street B (the street user's, never the grid worker's) and one of grid A, both still open.
    open_states = "('reported', 'registered', 'dispatched', 'in_progress')"
    t_a, c_a = sql(url, f"SELECT id, complaint_id FROM ticket WHERE grid_code = %s AND state IN {open_states} "
                        "ORDER BY id LIMIT 1", [grid_a])[0]
    t_x, c_x, grid_x, community_x = sql(url, f"""
        SELECT id, complaint_id, grid_code, community_code FROM ticket
        WHERE street_code = %s AND state IN {open_states} ORDER BY id LIMIT 1""", [street_b])[0]
    point_x = sql(url, "SELECT ST_X(geom), ST_Y(geom) FROM complaint WHERE id = %s", [c_x])[0]
    category = sql(url, "SELECT category_code FROM complaint WHERE id = %s", [c_x])[0][0]
    # Possible-duplicate links inside grid A and inside grid X, decided on in the matrix.
    links = {}
    for name, grid in (("a", grid_a), ("x", grid_x)):
        first, second = [r[0] for r in sql(url, "SELECT id FROM complaint WHERE grid_code = %s ORDER BY id LIMIT 2",
                                           [grid])]
        links[name] = sql(url, "INSERT INTO complaint_duplicate (complaint_id, duplicate_of_id, distance_m, "
                               "hours_apart) VALUES (%s, %s, 10, 1) RETURNING id", [second, first])[0][0]
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    export = ("工单编号,受理时间,诉求类别,诉求内容,事发地址,经度,纬度,来电人,联系电话\n"
              f"MATRIX-1,2026-01-05 09:00,{category},楼道堆物,,{point_x[0]},{point_x[1]},赵矩阵,13700000001\n"
              f"MATRIX-2,2026-01-05 09:10,{category},路灯不亮,,150.0,10.0,钱矩阵,13700000002\n"
              f"MATRIX-3,昨天下午,{category},噪音,,{point_x[0]},{point_x[1]},孙矩阵,13700000003\n")
    with live_app.client() as client:
        report = client.post("/complaints/imports", headers=admin,
                             files={"file": ("matrix.csv", export.encode(), "text/csv")})
        assert report.status_code == 200 and report.json()["rejected"] == 1, report.text
        photo = client.post(f"/tickets/{t_x}/photos", headers=admin, files={"file": ("p.png", PNG, "image/png")})
        assert photo.status_code == 201, photo.text
        rule = client.post("/tickets/rules", headers=admin, json={
            "priority": 990, "name": "matrix rule", "assignee_kind": "community", "active": False})
        assert rule.status_code == 201, rule.text
    tickets_by_grid: dict[str, set[int]] = {}
    complaints_by_grid: dict[str, set[int]] = {}
    for ticket_id, complaint_id, grid in sql(url, "SELECT t.id, t.complaint_id, coalesce(t.grid_code, '') "
                                                  "FROM ticket t"):
        tickets_by_grid.setdefault(grid, set()).add(ticket_id)
        complaints_by_grid.setdefault(grid, set()).add(complaint_id)
    street_of_grid = dict(sql(url, "SELECT code, left(code, 9) FROM grid WHERE valid_to IS NULL"))
    phones = {row[0] for row in sql(url, """
        SELECT reporter_phone FROM complaint UNION SELECT phone FROM grid_worker
        UNION SELECT secretary_phone FROM party_organisation UNION SELECT leader_phone FROM building
        UNION SELECT contact_phone FROM property_company UNION SELECT office_phone FROM community""") if row[0]}
    phones.add("13700000003")  # only in the rejected row of the import
    city = sql(url, "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                    "(SELECT ST_Extent(geom) e FROM street WHERE valid_to IS NULL) s")[0]
    period = sql(url, "SELECT max(period) FROM company_evaluation")[0][0]
    values = {
        "t_a": t_a, "t_x": t_x, "c_a": c_a, "c_x": c_x, "point_a": point_a, "point_x": point_x,
        "community_x": community_x, "category": category, "links": links, "photo": photo.json()["id"],
        "rule": rule.json()["id"], "batch": report.json()["batch_id"], "period": period or "2026H1",
        "bbox": ",".join(f"{v:.6f}" for v in city), "company": sql(url, "SELECT min(id) FROM property_company")[0][0],
        "companies": ",".join(str(r[0]) for r in sql(url, "SELECT id FROM property_company ORDER BY id")),
        "party": sql(url, "SELECT min(code) FROM party_organisation")[0][0],
        "micro": dict(sql(url, "SELECT id, micro_grid_code FROM complaint WHERE id IN (%s, %s)", [c_a, c_x])),
        "export": export.encode(),
        "export_period": sql(url, """SELECT to_char(max(reported_at) AT TIME ZONE 'UTC' - interval '365 days',
                                             'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                     to_char(max(reported_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                                     FROM complaint""")[0],
    }
    return World(url, live_app, grid_a, street_a, street_b, tokens, tickets_by_grid, complaints_by_grid,
                 street_of_grid, phones, values)


# --- 1. login rate limiting -------------------------------------------------------------------------------------

def test_failed_logins_are_limited_per_username_with_retry_after(world):
    create_users(world.url, PASSWORD, [("rl-user", "planner", []), ("rl-other", "planner", [])])
    with world.server.client() as client:
        assert [login(client, "rl-user", "wrong password").status_code for _ in range(5)] == [401] * 5
        locked = login(client, "rl-user")
        assert locked.status_code == 429, locked.text
        retry_after = int(locked.headers["retry-after"])
        assert 0 < retry_after <= 300 and "请稍后再试" in locked.json()["detail"]
        # The wait is per address and username: another user from the same address still signs in.
        assert login(client, "rl-other").status_code == 200
        # The window slides: once the failures are older than five minutes the user signs in again.
        sql(world.url, "UPDATE login_failure SET at = at - interval '301 seconds' WHERE username = 'rl-user'")
        assert login(client, "rl-user").status_code == 200
        assert sql(world.url, "SELECT count(*) FROM login_failure WHERE username = 'rl-user'") == [(0,)]


def test_concurrent_guesses_cannot_pass_the_limit_together(world):
    create_users(world.url, PASSWORD, [("rl-race", "planner", [])])

    def guess(_):
        with world.server.client() as client:
            return login(client, "rl-race", "wrong password").status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(guess, range(8)))
    assert statuses == [401] * 5 + [429] * 3
    assert sql(world.url, "SELECT count(*) FROM login_failure WHERE username = 'rl-race'") == [(5,)]
    sql(world.url, "UPDATE login_failure SET at = at - interval '1 hour'")


def test_the_limit_holds_across_worker_processes_and_per_address(world):
    """Failures are counted in the database: two app processes share them. Many usernames from one address
    lock that address out (20 failures), even for a correct password."""
    second = LiveServer(world.url)
    try:
        with world.server.client() as first_client, second.client() as second_client:
            for index in range(5):
                client = first_client if index % 2 else second_client
                assert login(client, "rl-shared", "wrong password").status_code == 401
            assert login(first_client, "rl-shared", "wrong password").status_code == 429
            assert login(second_client, "rl-shared", "wrong password").status_code == 429
            for index in range(15):
                assert login(second_client, f"rl-spray-{index}", "wrong password").status_code == 401
            refused = login(first_client, "m-planner")
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    finally:
        second.stop()
        sql(world.url, "UPDATE login_failure SET at = at - interval '1 hour'")
    with world.server.client() as client:
        assert login(client, "m-planner").status_code == 200


# --- 2. the personal-data access log ----------------------------------------------------------------------------

def audit_rows(world: World) -> list[tuple]:
    return sql(world.url, "SELECT id, username, role, method, endpoint, resource, record_ids, record_count, "
                          "request_id FROM audit_personal_read ORDER BY id")


def test_staff_reads_of_personal_data_are_logged_and_public_reads_are_not(world):
    t_a = world.values["t_a"]
    lon, lat = world.values["point_a"]
    z, x, y = tile_of(lon, lat, 15)
    with world.server.client() as client:
        before = len(audit_rows(world))
        for role in ("public", "planner"):
            assert client.get(f"/tickets/{t_a}", headers=world.headers(role)).status_code == 200
            assert client.get("/tickets", headers=world.headers(role)).status_code == 200
            assert client.get("/responsibility", params={"lon": lon, "lat": lat},
                              headers=world.headers(role)).status_code == 200
            client.get("/ogc/collections/complaint/items", headers=world.headers(role))
            client.get(f"/tiles/complaint/{z}/{x}/{y}.mvt", headers=world.headers(role))
        assert len(audit_rows(world)) == before, "a read without personal data was logged"

        answer = client.get(f"/tickets/{t_a}", headers={**world.headers("grid"), "x-request-id": "audit-check-1"})
        assert answer.status_code == 200 and answer.json()["reporter_phone"]
        row = audit_rows(world)[-1]
        assert row[1:] == ("m-grid", "grid_worker", "GET", "/tickets/{ticket_id}", "ticket", [str(t_a)], 1,
                           "audit-check-1")

        listed = client.get("/tickets", params={"limit": 50}, headers=world.headers("grid")).json()["items"]
        row = audit_rows(world)[-1]
        assert row[4] == "/tickets" and row[7] == len(listed) and set(row[6]) == {str(t["id"]) for t in listed}

        exported = client.get("/tickets.csv", headers=world.headers("admin"))
        exported_ids = {r["id"] for r in csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig")))}
        row = audit_rows(world)[-1]
        assert row[1:3] == ("m-admin", "admin") and row[4] == "/tickets.csv" and set(row[6]) == exported_ids
        assert len(exported_ids) == sum(len(ids) for ids in world.tickets_by_grid.values())

        contacts = client.get("/responsibility", params={"lon": lon, "lat": lat}, headers=world.headers("grid"))
        assert contacts.json()["contacts_shown"] is True
        row = audit_rows(world)[-1]
        assert row[4:6] == ("/responsibility", "contact") and row[7] >= 1

        for path in ("/ogc/collections/complaint/items", f"/tiles/complaint/{z}/{x}/{y}.mvt",
                     f"/complaints/imports/{world.values['batch']}/rejected.csv", "/complaints/review"):
            count = len(audit_rows(world))
            assert client.get(path, headers=world.headers("admin")).status_code == 200, path
            assert len(audit_rows(world)) == count + 1, f"{path} was not logged"

        # A read that finds nothing carries no personal data and is not logged.
        count = len(audit_rows(world))
        assert client.get("/tickets", params={"state": "merged", "grid": "000000000000000"},
                          headers=world.headers("admin")).json()["items"] == []
        assert len(audit_rows(world)) == count


def test_the_log_is_append_only_and_listed_for_administrators(world):
    import psycopg

    with world.server.client() as client:
        client.get(f"/tickets/{world.values['t_x']}", headers=world.headers("street"))
        listed = client.get("/audit/personal-reads", params={"record_id": world.values["t_x"]},
                            headers=world.headers("admin"))
        assert listed.status_code == 200
        assert any(row["username"] == "m-street" and row["endpoint"] == "/tickets/{ticket_id}"
                   for row in listed.json())
        assert client.get("/audit/personal-reads", headers=world.headers("street")).status_code == 403
        assert client.get("/audit/personal-reads").status_code == 401
    listed = subprocess.run([sys.executable, "-c", "from cli.main import app; app()", "audit", "reads", "--username",
                             "m-street", "--limit", "5"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "GRIDGOV_DATABASE_URL": world.url})
    assert listed.returncode == 0 and "/tickets/{ticket_id}" in listed.stdout, listed.stderr
    for statement in ("UPDATE audit_personal_read SET username = 'someone else'", "DELETE FROM audit_personal_read",
                      "TRUNCATE audit_personal_read"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sql(world.url, statement)


# --- 3. tokens expire and can be revoked ------------------------------------------------------------------------

def test_expired_and_revoked_tokens_are_refused_not_treated_as_public(world):
    with world.server.client() as client:
        for finish in ("revoke", "expire"):
            token = login(client, "m-admin").json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            assert client.get(f"/tickets/{world.values['t_a']}", headers=headers).json()["reporter_phone"]
            if finish == "revoke":
                assert client.post("/auth/logout", headers=headers).status_code == 200
            else:
                from gis.access.auth import token_digest

                sql(world.url, "UPDATE auth_token SET expires_at = now() - interval '1 second' "
                               "WHERE token_digest = %s", [token_digest(token)])
            for path in (f"/tickets/{world.values['t_a']}", "/tickets.csv", "/tickets", "/auth/me"):
                assert client.get(path, headers=headers).status_code == 401, (finish, path)


# --- 4. the security matrix -------------------------------------------------------------------------------------

@dataclass
class Case:
    method: str
    url: str
    params: dict | None = None
    json: object = None
    data: dict | None = None
    files: dict | None = None


def app_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves, from app.routes (schema or not), plus mounts."""
    from api.main import create_app

    app = create_app("postgresql://nobody@127.0.0.1:1/none")

    def walk(routes):
        for route in routes:
            if hasattr(route, "effective_candidates"):  # routers included lazily by FastAPI
                yield from walk(route.effective_candidates())
            elif getattr(route, "methods", None):
                for method in sorted(route.methods - {"HEAD"}):
                    # "{ticket_id:int}" is the OpenAPI document's "{ticket_id}" with a converter
                    yield method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            elif getattr(route, "path", None):
                yield "MOUNT", route.path

    found = sorted(set(walk(app.routes)))
    documented = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    assert documented <= set(found), documented - set(found)
    return found


ROUTES = app_routes()


def cases_for(world: World, method: str, path: str) -> list[Case]:
    """Concrete requests for one route: every path parameter filled in, required query parameters given, and
    for writes a body that reaches the scope checks. Inside and outside grid A wherever ids are involved."""
    v = world.values
    lon_a, lat_a = v["point_a"]
    lon_x, lat_x = v["point_x"]
    tiles = [tile_of(lon_a, lat_a, 15), tile_of(lon_a, lat_a, 13), tile_of(lon_x, lat_x, 15)]
    both_tickets = [v["t_a"], v["t_x"]]
    both_complaints = [v["c_a"], v["c_x"]]
    key = f"{method} {path}"
    ticket_cases = {
        "GET /tickets/{ticket_id}": [Case("GET", f"/tickets/{t}") for t in both_tickets],
        "POST /tickets/{ticket_id}/transitions": [
            Case("POST", f"/tickets/{t}/transitions", json={"action": "no-such-action"}) for t in both_tickets],
        "POST /tickets/{ticket_id}/comments": [
            Case("POST", f"/tickets/{t}/comments", json={"note": "matrix <script>alert(1)</script>"})
            for t in both_tickets],
        "POST /tickets/{ticket_id}/photos": [
            Case("POST", f"/tickets/{t}/photos", files={"file": ("p.png", PNG, "image/png")}) for t in both_tickets],
        "GET /tickets/{ticket_id}/photos/{photo_id}": [Case("GET", f"/tickets/{v['t_x']}/photos/{v['photo']}")],
        "POST /tickets/{ticket_id}/rating": [
            Case("POST", f"/tickets/{t}/rating", json={"score": 5, "reporter_phone": "10000000000"})
            for t in both_tickets],
        "POST /tickets/{ticket_id}/callbacks": [
            Case("POST", f"/tickets/{t}/callbacks", json={"solved": False, "note": "matrix <script>"})
            for t in both_tickets],
        "POST /tickets/assign": [Case("POST", "/tickets/assign", json={
            "assignee": {"kind": "community", "code": v["community_x"]}, "ticket_ids": [v["t_x"]]})],
        "POST /tickets/rules": [Case("POST", "/tickets/rules", json={
            "priority": 991, "name": "matrix", "assignee_kind": "community", "active": False})],
        "PUT /tickets/rules/{rule_id}": [Case("PUT", f"/tickets/rules/{v['rule']}", json={
            "priority": 990, "name": "matrix rule", "assignee_kind": "community", "active": False})],
        "DELETE /tickets/rules/{rule_id}": [Case("DELETE", f"/tickets/rules/{v['rule']}")],
        "PUT /tickets/deadlines/{deadline_class}": [Case("PUT", "/tickets/deadlines/general", json={
            "amount": 7, "unit": "days", "basis": "working", "response_hours": 24})],
        "GET /tickets/calendar": [Case("GET", "/tickets/calendar", params={"start": "2026-01-01",
                                                                           "end": "2026-01-31"})],
        "PUT /tickets/calendar/{day}": [Case("PUT", "/tickets/calendar/2031-01-04", json={"is_workday": False})],
        "GET /tickets": [Case("GET", "/tickets", params={"limit": 1000})],
        "GET /tickets.geojson": [Case("GET", "/tickets.geojson", params={"limit": 1000})],
        "GET /tickets/tiles/{z}/{x}/{y}.mvt": [Case("GET", f"/tickets/tiles/{z}/{x}/{y}.mvt") for z, x, y in tiles],
        "GET /tickets/rates/tickets": [Case("GET", "/tickets/rates/tickets", params={
            "rate": "resolution", "level": "community", "unit": unit, "limit": 1000})
            for unit in (world.grid_a[:12], v["community_x"])],
        "GET /tickets/assignees": [Case("GET", "/tickets/assignees", params={"kind": "community", "code": unit})
                                   for unit in (world.grid_a[:12], v["community_x"])],
        "GET /supervision/overdue": [Case("GET", "/supervision/overdue", params={"limit": 1000})],
        "POST /supervision/tickets/{ticket_id}/remind": [
            Case("POST", f"/supervision/tickets/{t}/remind", json={"note": "matrix"}) for t in both_tickets],
        "POST /supervision/tickets/{ticket_id}/escalate": [
            Case("POST", f"/supervision/tickets/{t}/escalate", json={"department": "矩阵", "reason": "matrix"})
            for t in both_tickets],
        "POST /supervision/escalations/{escalation_id}/answer": [
            Case("POST", "/supervision/escalations/999999/answer", json={"answer": "matrix"})],
        "POST /reports/street": [Case("POST", "/reports/street", json={"street": "没有这个街道"})],
        "POST /analytics/proactive": [Case("POST", "/analytics/proactive", params={"month": "2026-10"})],
        "POST /analytics/proactive/{task_id}/done": [Case("POST", "/analytics/proactive/999999/done")],
        "GET /reports/jobs/{job_id}": [Case("GET", "/reports/jobs/no-such-job")],
        "GET /reports/jobs/{job_id}/report.pdf": [Case("GET", "/reports/jobs/no-such-job/report.pdf")],
        "GET /reports/map.html": [Case("GET", "/reports/map.html", params={"street": s})
                                  for s in (world.street_a, world.street_b)]
        + [Case("GET", "/reports/map.html", params={"district": world.street_a[:6]})],
    }
    other_cases = {
        "MOUNT /static": [Case("GET", "/static/map/main.js")],
        "GET /layers/{layer}.geojson": [Case("GET", f"/layers/{layer}.geojson") for layer in ("grid", "building")],
        "GET /map/search.json": [Case("GET", "/map/search.json", params={"q": q})
                                 for q in ("1号楼", str(v["t_x"]), str(v["c_x"]), "MATRIX-1")],
        "GET /map/property-companies.json": [Case("GET", "/map/property-companies.json",
                                                  params={"ids": v["companies"]})],
        "GET /map/party-organisations.geojson": [Case("GET", "/map/party-organisations.geojson",
                                                      params={"bbox": v["bbox"]})],
        "GET /map/complaints.geojson": [Case("GET", "/map/complaints.geojson", params={"bbox": v["bbox"]})],
        "GET /map/integrity.geojson": [Case("GET", "/map/integrity.geojson"),
                                       Case("GET", "/map/integrity.geojson", params={"tolerance": "nan"})],
        "GET /responsibility": [Case("GET", "/responsibility", params={"lon": lon, "lat": lat})
                                for lon, lat in (v["point_a"], v["point_x"])],
        "GET /tiles/{layer}.json": [Case("GET", f"/tiles/{layer}.json") for layer in ("complaint", "grid")],
        "GET /tiles/{layer}/tilejson.json": [Case("GET", "/tiles/complaint/tilejson.json")],
        "GET /basemap/{z}/{x}/{y}": [Case("GET", "/basemap/15/27043/13117.pbf"), Case("GET", "/basemap/99/0/0")],
        "GET /tiles/{layer}/{z}/{x}/{y}.mvt": [Case("GET", f"/tiles/{layer}/{z}/{x}/{y}.mvt")
                                               for layer in ("complaint", "building", "grid") for z, x, y in tiles],
        "GET /ogc/collections/{collection_id}": [Case("GET", f"/ogc/collections/{c}")
                                                 for c in ("complaint", "party_organisation", "grid")],
        "GET /ogc/collections/{collection_id}/items": [
            Case("GET", f"/ogc/collections/{c}/items", params={"limit": 10000})
            for c in ("complaint", "party_organisation", "grid")],
        "GET /ogc/collections/{collection_id}/items/{feature_id}": [
            Case("GET", f"/ogc/collections/{c}/items/{f}") for c, f in (
                ("complaint", v["c_a"]), ("complaint", v["c_x"]), ("party_organisation", v["party"]),
                ("grid", world.grid_a))],
        "GET /analytics/evaluations/{period}": [Case("GET", f"/analytics/evaluations/{v['period']}")],
        "POST /analytics/evaluations/{period}": [Case("POST", "/analytics/evaluations/1999H1")],
        "GET /analytics/companies/{company_id}/credit-file": [
            Case("GET", f"/analytics/companies/{v['company']}/credit-file")],
        "GET /analytics/companies/{company_id}/compounds.geojson": [
            Case("GET", f"/analytics/companies/{v['company']}/compounds.geojson")],
        "GET /analytics/subsidy/{period}": [Case("GET", f"/analytics/subsidy/{v['period']}")],
        "GET /analytics/programme/{figure}": [Case("GET", "/analytics/programme/committee_formation"),
                                              Case("GET", "/analytics/programme/no_such_figure")],
        "POST /auth/login": [Case("POST", "/auth/login", json={"username": "m-nobody", "password": "x" * 12})],
        "POST /users": [Case("POST", "/users", json={"username": "m-x", "password": "long enough pw",
                                                      "role": "wizard"})],
        "PATCH /users/{username}": [Case("PATCH", "/users/m-nobody", json={"active": True})],
        "GET /open311/v2/discovery.{fmt}": [Case("GET", f"/open311/v2/discovery.{f}") for f in ("json", "xml")],
        "GET /open311/v2/services.{fmt}": [Case("GET", "/open311/v2/services.json")],
        "GET /open311/v2/services/{name}": [Case("GET", f"/open311/v2/services/{v['category']}.json")],
        "GET /open311/v2/requests.{fmt}": [Case("GET", f"/open311/v2/requests.{f}") for f in ("json", "xml")],
        "POST /open311/v2/requests.{fmt}": [Case("POST", "/open311/v2/requests.json",
                                                 data={"service_code": v["category"]})],
        "GET /open311/v2/requests/{name}": [Case("GET", f"/open311/v2/requests/{c}.json", params=p)
                                            for c in both_complaints for p in ({}, {"extensions": "true"})],
        "GET /open311/v2/requests/export.{fmt}": [Case("GET", f"/open311/v2/requests/export.{f}", params={
            "start_date": v["export_period"][0], "end_date": v["export_period"][1], "extensions": "true"})
            for f in ("json", "csv")],
        "GET /open311/v2/tokens/{name}": [Case("GET", "/open311/v2/tokens/no-such-token.json")],
        "POST /complaints/imports": [Case("POST", "/complaints/imports",
                                          files={"file": ("matrix.csv", v["export"], "text/csv")})],
        "GET /complaints/imports/{batch_id}": [Case("GET", f"/complaints/imports/{v['batch']}")],
        "GET /complaints/imports/{batch_id}/rejected.csv": [
            Case("GET", f"/complaints/imports/{v['batch']}/rejected.csv")],
        "POST /complaints/{complaint_id}/placement": [
            Case("POST", f"/complaints/{c}/placement", json={"micro_grid_code": v["micro"][c]})
            for c in both_complaints],
        "GET /complaints/{complaint_id}/placement": [Case("GET", f"/complaints/{c}/placement")
                                                     for c in both_complaints],
        "GET /complaints/{complaint_id}/duplicates": [Case("GET", f"/complaints/{c}/duplicates")
                                                      for c in both_complaints],
        "GET /complaints/{complaint_id}/suggestion": [Case("GET", f"/complaints/{c}/suggestion", params=query)
                                                      for c in both_complaints
                                                      for query in (None, {"or_newest": "true"})],
        "POST /complaints/suggest": [Case("POST", "/complaints/suggest", json={"text": "楼道灯不亮"})],
        "POST /complaints/duplicates/{link_id}": [Case("POST", f"/complaints/duplicates/{link}",
                                                       json={"state": "dismissed"})
                                                  for link in v["links"].values()],
        "GET /audit/personal-reads": [Case("GET", "/audit/personal-reads", params={"limit": 50})],
        # evaluation inputs and consequences: each refused or answered in scope, never a server error
        "POST /evaluation/inspections": [Case("POST", "/evaluation/inspections", json={
            "company_id": v["company"], "inspected_on": "2026-03-01", "score": 101})],
        "GET /evaluation/inspections": [Case("GET", "/evaluation/inspections", params={"period": "2026H1"})],
        "POST /evaluation/ratings": [Case("POST", "/evaluation/ratings", json={
            "company_id": v["company"], "period": "2026H1", "score": -1})],
        "GET /evaluation/ratings": [Case("GET", "/evaluation/ratings", params={"period": "2026H1"})],
        "POST /evaluation/surveys": [Case("POST", "/evaluation/surveys", json={
            "compound_code": "NO-SUCH", "surveyed_on": "2026-03-01", "sample_size": 10, "score": 80})],
        "GET /evaluation/surveys": [Case("GET", "/evaluation/surveys", params={"period": "2026H1"})],
        "POST /evaluation/rectifications/{task_id}/follow-up": [
            Case("POST", "/evaluation/rectifications/999999/follow-up", json={"result": "passed"})],
        "POST /evaluation/exits": [Case("POST", "/evaluation/exits", json={"company_id": v["company"],
                                                                           "period": "1999H1"})],
        "POST /evaluation/subsidy-ledger/{period}": [Case("POST", "/evaluation/subsidy-ledger/1999H1")],
        "GET /evaluation/subsidy-ledger/{period}": [Case("GET", f"/evaluation/subsidy-ledger/{v['period']}")],
        "POST /evaluation/credit-items": [Case("POST", "/evaluation/credit-items", json={
            "company_id": v["company"], "kind": "good", "category": "no_such", "title": "矩阵",
            "occurred_on": "2026-03-01"})],
        "POST /evaluation/credit-items/{item_id}/review": [
            Case("POST", "/evaluation/credit-items/999999/review", json={"decision": "approve", "reason": "矩阵"})],
        # likely duplicates near a point in and outside grid A (outside the caller's scope a ticket is shown as the
        # public sees it: snapped place, compound address, the score alone)
        "GET /complaints/similar": [Case("GET", "/complaints/similar", params={
            "lon": lon, "lat": lat, "text": "楼道堆物", "category": "E0605"})
            for lon, lat in (v["point_a"], v["point_x"])],
        "GET /field/place": [Case("GET", "/field/place", params={"lon": lon, "lat": lat})
                             for lon, lat in (v["point_a"], v["point_x"])],
        # an unknown category: the scope check runs, nothing is stored
        "POST /field/reports": [Case("POST", "/field/reports", json={
            "client_id": "0f8e3f4e-1c1a-4c55-9d38-6a1b0f3a2c11", "category_code": "NO-SUCH", "lon": lon, "lat": lat})
            for lon, lat in (v["point_a"], v["point_x"])],
        # the registry: templates, exports in scope, an import of no rows, a takeover of no compound
        "GET /registry/{kind}/template.csv": [Case("GET", "/registry/owners_committee/template.csv")],
        "GET /registry/{kind}/template.xlsx": [Case("GET", "/registry/grid_worker/template.xlsx")],
        "GET /registry/{kind}/export.csv": [Case("GET", f"/registry/{kind}/export.csv")
                                            for kind in ("grid_worker", "compound_attributes", "property_company")],
        "GET /registry/{kind}/export.xlsx": [Case("GET", "/registry/party_organisation/export.xlsx")],
        "POST /registry/{kind}/imports": [Case("POST", "/registry/building_leader/imports", files={
            "file": ("matrix.csv", "楼栋编码,楼长姓名\n".encode(), "text/csv")})],
        "POST /registry/compounds/{compound_code}/takeover": [Case(
            "POST", "/registry/compounds/NO-SUCH/takeover",
            json={"company_credit_code": "91350100M000100Y43", "on_date": "2026-01-01", "reason": "矩阵"})],
        "GET /registry/compounds/{compound_code}/parties": [
            Case("GET", f"/registry/compounds/{unit}C0001/parties") for unit in (world.grid_a[:12], v["community_x"])],
        "POST /registry/compounds/{compound_code}/management": [Case(
            "POST", "/registry/compounds/NO-SUCH/management",
            json={"management_mode": "代管", "on_date": "2026-01-01", "reason": "矩阵"})],
        "POST /registry/compounds/{compound_code}/committee-terms": [Case(
            "POST", "/registry/compounds/NO-SUCH/committee-terms",
            json={"term_start": "2026-01-01", "member_count": 5, "party_member_count": 1, "chair_name": "矩阵",
                  "chair_is_party_member": True, "reason": "矩阵"})],
        "POST /registry/grid-workers/joins": [Case("POST", "/registry/grid-workers/joins", json={
            "grid_code": "NO-SUCH", "worker_id": 999999, "on_date": "2026-01-01", "reason": "矩阵"})],
        "POST /registry/grid-workers/{worker_id}/leave": [Case(
            "POST", "/registry/grid-workers/999999/leave", json={"on_date": "2026-01-01", "reason": "矩阵"})],
        "POST /registry/party-organisations/{organisation_code}/secretary": [Case(
            "POST", "/registry/party-organisations/NO-SUCH/secretary", json={"secretary_name": "矩阵",
                                                                             "reason": "矩阵"})],
        "POST /registry/party-organisations/{organisation_code}/dissolve": [Case(
            "POST", "/registry/party-organisations/NO-SUCH/dissolve", json={"on_date": "2026-01-01",
                                                                            "reason": "矩阵"})],
        "POST /registry/company/proposals": [Case("POST", "/registry/company/proposals", json={
            "has_party_org": True, "party_work_only": True})],
        "GET /registry/proposals": [Case("GET", "/registry/proposals", params={"state": "pending"})],
        "POST /registry/proposals/{proposal_id}/approve": [Case("POST", "/registry/proposals/999999/approve",
                                                                json={})],
        "POST /registry/proposals/{proposal_id}/reject": [Case("POST", "/registry/proposals/999999/reject",
                                                               json={"reason": "矩阵"})],
    }
    found = ticket_cases.get(key) or other_cases.get(key)
    if found is not None:
        return found
    if key not in PLAIN_ROUTES:
        raise AssertionError(f"no case for the route {key}: add one to cases_for (or to PLAIN_ROUTES)")
    return [Case(method, path, json={} if method in ("POST", "PUT", "PATCH") else None)]


PLAIN_ROUTES = {
    "GET /", "GET /health", "GET /docs", "GET /openapi.json", "GET /layers", "GET /tiles", "GET /basemap.json",
    "GET /map", "GET /dashboard", "GET /map/config.json", "GET /map/categories.json", "GET /map/building-labels.json",
    "GET /sw.js", "GET /manifest.webmanifest",
    "GET /map/complaint-counts.json",
    "GET /ogc", "GET /ogc/api", "GET /ogc/collections", "GET /ogc/conformance",
    "GET /analytics/complaints", "GET /analytics/coverage", "GET /analytics/emerging", "GET /analytics/hexagons",
    "GET /analytics/hotspots", "GET /analytics/programme", "GET /analytics/programme/trend", "GET /analytics/gaps",
    "GET /analytics/gaps.geojson", "GET /analytics/emerging-cube", "GET /analytics/monthly-problems",
    "GET /analytics/proactive",
    "GET /auth/me", "POST /auth/logout", "GET /users", "GET /field/me",
    "GET /registry/kinds", "GET /registry/committees/expiring", "GET /registry/changes", "GET /registry/company",
    "GET /complaints/review",
    "GET /tickets.csv", "GET /tickets/deadlines", "GET /tickets/rates", "GET /tickets/rules", "GET /tickets/workflow",
    "GET /supervision/escalations", "GET /supervision/stats",
    "GET /evaluation/rectifications", "GET /evaluation/exits", "GET /evaluation/credit-items",
    "GET /evaluation/companies", "GET /evaluation/credit-grades", "GET /evaluation/credit-grades.html",
}
"""Routes the matrix calls as they are (no path parameter, no body of their own): a row each, written out, so a
new route of the app with no row here or in `cases_for` fails `test_every_route_is_covered`."""


TICKET_RECORDS = {"/tickets", "/tickets.geojson", "/tickets.csv", "/tickets/{ticket_id}",
                  "/tickets/tiles/{z}/{x}/{y}.mvt", "/tickets/rates/tickets", "/supervision/overdue"}
"""Routes whose records are tickets (so their `id` is a ticket id)."""
COMPLAINT_RECORDS = {"/complaints/review", "/complaints/{complaint_id}/placement", "/map/complaints.geojson"}
"""Routes whose records are complaints; OGC items and vector tiles also, for the complaint collection/layer."""


def record_ids(path: str, url: str, response: httpx.Response) -> tuple[set[int], set[int]]:
    """(ticket ids, complaint ids) a response carries, read at record level: the object itself, the elements of
    a list answer or of its `items`/`features`, and features' properties (nested history, photos and parties
    have ids of their own and are not read). Elsewhere only the named keys count (`ticket_id`, `complaint_id`,
    `duplicate_of_id`, ...), since an `id` there names something else (a rule, a photo, a duplicate link)."""
    ticket_context = path in TICKET_RECORDS
    complaint_context = path in COMPLAINT_RECORDS or url.startswith("/ogc/collections/complaint/")
    records: list[dict] = []
    kind = response.headers.get("content-type", "")
    if "vnd.mapbox-vector-tile" in kind and response.content:
        for name, layer in mapbox_vector_tile.decode(response.content).items():
            ticket_context, complaint_context = name == "tickets", name == "complaint"
            records += [{**feature["properties"], "id": feature["properties"].get("id", feature.get("id"))}
                        for feature in layer["features"]]
    elif "csv" in kind:
        records = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    elif "json" in kind:
        body = response.json()
        top = body if isinstance(body, list) else [body]
        for item in top:
            if not isinstance(item, dict):
                continue
            records.append(item)
            for nested in itertools.chain(item.get("items") or [], item.get("features") or []):
                if isinstance(nested, dict):
                    records.append({**(nested.get("properties") or {}), "id": nested.get("id")})
                    records.append(nested)
    tickets, complaints = set(), set()

    def number(value) -> int | None:
        try:
            return int(value)
        except (TypeError, ValueError):
            return None

    for record in records:
        for name, value in record.items():
            values = value if isinstance(value, list) else [value]
            for one in map(number, values):
                if one is None:
                    continue
                if name in ("ticket_id", "merged_into_id") or (name in ("id", "duplicates") and ticket_context):
                    tickets.add(one)
                if name in ("complaint_id", "duplicate_of_id", "service_request_id") or (
                        name == "id" and complaint_context):
                    complaints.add(one)
    return tickets, complaints


def keys_and_text(response: httpx.Response) -> tuple[set[str], str]:
    """Every key (JSON keys, CSV columns, MVT property names) with a value, and the text to search for phones."""
    kind = response.headers.get("content-type", "")
    keys: set[str] = set()
    if "vnd.mapbox-vector-tile" in kind and response.content:
        decoded = mapbox_vector_tile.decode(response.content)
        for layer in decoded.values():
            for feature in layer["features"]:
                keys |= {k for k, v in feature["properties"].items() if v not in (None, "")}
        return keys, json.dumps(decoded, ensure_ascii=False, default=str)
    text = response.content.decode("utf-8", errors="replace")
    if "csv" in kind:
        rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        keys = {k for row in rows for k, v in row.items() if v not in (None, "")}
    elif "json" in kind:
        def walk(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    if v not in (None, "", [], {}):
                        keys.add(k)
                    walk(v)
            elif isinstance(node, list):
                for item in node:
                    walk(item)
        walk(response.json())
    else:
        keys = {k for k in PERSONAL_KEYS if re.search(rf"<{k}>[^<]", text)}
    return keys, text


def test_every_route_is_covered(world):
    uncovered = []
    for method, path in ROUTES:
        try:
            cases_for(world, method, path)
        except AssertionError as error:
            uncovered.append(str(error))
    assert not uncovered, "\n".join(uncovered)
    # no stale rows: each written-out route is one the app serves
    assert PLAIN_ROUTES <= {f"{method} {path}" for method, path in ROUTES}, PLAIN_ROUTES - {
        f"{method} {path}" for method, path in ROUTES}


@pytest.mark.parametrize("role", ROLES)
def test_security_matrix(world, role):
    """Every route for one role: no 5xx; no personal data for the public or planners; nothing outside its scope
    for the grid worker (grid A) and the street office (street B); and positive controls showing that each check
    sees what it looks for."""
    digit_runs = re.compile(r"\d+")
    written = {phone for phone in world.phones if not phone.isdigit()}  # such as 0538-8261234

    def phone_in(text: str) -> str | None:
        return next((run for run in digit_runs.findall(text) if run in world.phones), None) or next(
            (phone for phone in written if phone in text), None)

    other_tickets, other_complaints = world.outside("grid" if role == "grid" else "street")
    own_tickets = world.tickets_by_grid[world.grid_a] if role == "grid" else (
        set().union(*world.tickets_by_grid.values()) - other_tickets)
    failures: list[str] = []
    seen_tickets: set[int] = set()
    seen_other: set[int] = set()
    personal_seen = False
    with world.server.client() as client:
        for method, path in ROUTES:
            for case in cases_for(world, method, path):
                headers = world.headers(role)
                if path == "/auth/logout" and world.tokens[role]:
                    # Sign out a token of its own, so the matrix keeps its tokens.
                    username = {"planner": "m-planner", "grid": "m-grid", "street": "m-street",
                                "admin": "m-admin"}[role]
                    headers = {"Authorization": f"Bearer {login(client, username).json()['access_token']}"}
                response = client.request(case.method, case.url, params=case.params, json=case.json,
                                          data=case.data, files=case.files, headers=headers)
                label = f"{role} {case.method} {case.url} {case.params or ''} -> {response.status_code}"
                if response.status_code >= 500:
                    failures.append(f"{label}: server error {response.text[:200]}")
                    continue
                if response.status_code >= 300:
                    continue
                keys, text = keys_and_text(response)
                found_phone = phone_in(text)
                leaked = sorted(keys & PERSONAL_KEYS) if path not in API_DOCUMENTS else []
                if role in ("public", "planner"):
                    if leaked:
                        failures.append(f"{label}: personal field(s) {leaked}")
                    if found_phone:
                        failures.append(f"{label}: a person's phone number {found_phone}")
                elif leaked and found_phone:
                    personal_seen = True
                tickets, complaints = record_ids(path, case.url, response)
                seen_tickets |= tickets
                seen_other |= (tickets & other_tickets) | (complaints & other_complaints)
                if role in ("grid", "street") and path not in PUBLIC_INTERFACES:
                    foreign = sorted((tickets & other_tickets) | {c + 0.5 for c in complaints & other_complaints})
                    if foreign:
                        failures.append(f"{label}: ids outside its scope (x.5 = complaint) {foreign[:10]}")
    assert not failures, "\n".join(failures)
    # Positive controls: the checks above look at real data, so they could fail.
    if role in ("grid", "street", "admin"):
        assert personal_seen, "staff saw no personal data at all: the leak check would see nothing either"
    if role in ("grid", "street"):
        assert seen_tickets & own_tickets, f"the {role} user saw none of its own tickets"
    if role in ("admin", "public"):
        assert seen_other, f"{role} saw nothing outside street B: the scope check would see nothing either"
