"""No stored value can break a read: odd values written straight into the tables (infinite and far-off times and
dates, empty geometries, NULLs wherever a column allows them), then every GET route of the app's OpenAPI document
called as administrator, planner and the public — no answer may be a server error.

The sweep prints its size (routes × odd values × roles, requests sent) and the server errors found. Values
PostgreSQL holds but Python cannot (years beyond 9999, BC dates) cannot be read by any driver code and are kept
out at every entry instead (gis/times.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import psycopg
import pytest
from conftest import LiveServer

from tests.users import create_users

PASSWORD = "odd values sweep 1"
ROLES = ("admin", "planner", "public")
TIMES = ("-infinity", "infinity", "0001-01-01 00:00:00+00", "9999-12-31 23:59:59+00", "1900-01-01 00:00:00+08")
DATES = ("-infinity", "infinity", "0001-01-01", "9999-12-31")
LAYERS = ("district", "street", "community", "grid", "micro_grid", "compound", "building")


def sql(url: str, statement: str, params=None):
    with psycopg.connect(url) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else None


@dataclass
class Written:
    """What the odd-value writer managed to store (a value the schema refuses cannot break a read)."""

    stored: list[tuple[str, str, str]]
    refused: list[tuple[str, str, str]]


def _try(conn: psycopg.Connection, written: Written, table: str, column: str, value: str, statement: str,
         params) -> bool:
    try:
        with conn.transaction():
            conn.execute(statement, params)
    except psycopg.Error:
        written.refused.append((table, column, value))
        return False
    written.stored.append((table, column, value))
    return True


def _columns(conn: psycopg.Connection, table: str, types: tuple[str, ...]) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND data_type = ANY(%s) "
        "AND is_generated = 'NEVER' ORDER BY ordinal_position", [table, list(types)])]


def _nullable(conn: psycopg.Connection, table: str) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND is_nullable = 'YES' "
        "AND is_generated = 'NEVER' ORDER BY ordinal_position", [table])]


def write_odd_values(url: str) -> tuple[Written, dict]:
    """Odd values into complaints, tickets, their events and intake rows, every layer, party organisations and
    import batches; returns what was stored and the ids of the rows that hold them."""
    written = Written([], [])
    ids: dict = {"complaints": [], "tickets": [], "features": {}}
    with psycopg.connect(url) as conn:
        conn.execute("SET session_replication_role = replica")  # straight into the tables: no triggers
        rows = conn.execute("SELECT c.id, t.id FROM complaint c JOIN ticket t ON t.complaint_id = c.id "
                            "ORDER BY c.id LIMIT %s", [len(TIMES) + 3]).fetchall()
        time_columns = {table: _columns(conn, table, ("timestamp with time zone", "timestamp without time zone"))
                        for table in ("complaint", "ticket", "ticket_event", "complaint_intake", "intake_batch")}
        for (complaint, ticket), value in zip(rows, TIMES):
            ids["complaints"].append(complaint)
            ids["tickets"].append(ticket)
            for table, key, row_id in (("complaint", "id", complaint), ("ticket", "id", ticket),
                                       ("ticket_event", "ticket_id", ticket),
                                       ("complaint_intake", "complaint_id", complaint)):
                for column in time_columns[table]:
                    _try(conn, written, table, column, value,
                         f"UPDATE {table} SET {column} = %s::timestamptz WHERE {key} = %s", [value, row_id])
        empty_complaint, null_complaint, null_ticket = rows[len(TIMES)][0], rows[len(TIMES) + 1][0], rows[-1][1]
        ids["complaints"] += [empty_complaint, null_complaint]
        ids["tickets"] += [rows[len(TIMES)][1], rows[len(TIMES) + 1][1], null_ticket]
        _try(conn, written, "complaint", "geom", "POINT EMPTY",
             "UPDATE complaint SET geom = ST_SetSRID('POINT EMPTY'::geometry, 4326) WHERE id = %s", [empty_complaint])
        for table, row_id in (("complaint", null_complaint), ("ticket", null_ticket)):
            for column in _nullable(conn, table):
                _try(conn, written, table, column, "NULL", f"UPDATE {table} SET {column} = NULL WHERE id = %s",
                     [row_id])
        for column in _nullable(conn, "complaint_intake"):
            _try(conn, written, "complaint_intake", column, "NULL",
                 f"UPDATE complaint_intake SET {column} = NULL WHERE complaint_id = %s", [null_complaint])
        batch = conn.execute("INSERT INTO intake_batch (source, file_name, file_sha256, mapping, crs) VALUES "
                             "('hotline', 'odd.csv', 'odd', '{}', 'EPSG:4326') RETURNING id").fetchone()[0]
        ids["batch"] = batch
        for value in TIMES[:2]:
            for column in time_columns["intake_batch"]:
                _try(conn, written, "intake_batch", column, value,
                     f"UPDATE intake_batch SET {column} = %s::timestamptz WHERE id = %s", [value, batch])
        for layer in LAYERS:
            codes = [row[0] for row in conn.execute(
                f"SELECT code FROM {layer} WHERE valid_to IS NULL ORDER BY code LIMIT %s", [len(DATES) + 2])]
            ids["features"][layer] = codes
            for code, value in zip(codes, DATES):
                _try(conn, written, layer, "valid_from", value,
                     f"UPDATE {layer} SET valid_from = %s::date WHERE code = %s AND valid_to IS NULL", [value, code])
            _try(conn, written, layer, "valid_to", "infinity",
                 f"UPDATE {layer} SET valid_to = 'infinity' WHERE code = %s AND valid_to IS NULL",
                 [codes[min(len(DATES), len(codes) - 1)]])
            _try(conn, written, layer, "geom", "MULTIPOLYGON EMPTY",
                 f"UPDATE {layer} SET geom = ST_SetSRID('MULTIPOLYGON EMPTY'::geometry, 4326) "
                 "WHERE code = %s AND valid_to IS NULL", [codes[min(len(DATES) + 1, len(codes) - 1)]])
            for column in _nullable(conn, layer):
                if column != "valid_to":
                    _try(conn, written, layer, column, "NULL",
                         f"UPDATE {layer} SET {column} = NULL WHERE code = %s AND valid_to IS NULL", [codes[0]])
        parties = [row[0] for row in conn.execute(
            "SELECT code FROM party_organisation ORDER BY code LIMIT %s", [len(DATES)])]
        ids["parties"] = parties
        for code, value in zip(parties, DATES):
            _try(conn, written, "party_organisation", "founded_on", value,
                 "UPDATE party_organisation SET founded_on = %s::date WHERE code = %s", [value, code])
    return written, ids


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 1 << z
    return (z, int((lon + 180.0) / 360.0 * n),
            int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n))


@pytest.fixture(scope="module")
def sweep_world(city_db):
    url = city_db
    create_users(url, PASSWORD, [("odd-admin", "admin"), ("odd-planner", "planner")])
    # places and ids taken before the odd values go in
    lon, lat = sql(url, "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grid "
                        "WHERE valid_to IS NULL ORDER BY code LIMIT 1) s")[0]
    bbox = ",".join(f"{v:.6f}" for v in sql(url, "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                                 "(SELECT ST_Extent(geom) e FROM street) s")[0])
    companies = [row[0] for row in sql(url, "SELECT id FROM property_company ORDER BY id LIMIT 3")]
    written, ids = write_odd_values(url)
    server = LiveServer(url)
    with server.client() as client:
        tokens = {role: client.post("/auth/login", json={"username": f"odd-{role}", "password": PASSWORD}).json()[
            "access_token"] for role in ("admin", "planner")}
    photo_ticket = ids["tickets"][0]
    yield {"url": url, "server": server, "tokens": tokens, "written": written, "ids": ids, "point": (lon, lat),
           "bbox": bbox, "companies": companies, "photo_ticket": photo_ticket}
    server.stop()


def get_routes() -> list[tuple[str, dict]]:
    from api.main import create_app

    document = create_app("postgresql://nobody@127.0.0.1:1/none").openapi()
    return [(path, item["get"]) for path, item in sorted(document["paths"].items()) if "get" in item]


ROUTES = get_routes()
PERIODS = ("2026H1", "2025", "2026-01-01..2026-12-31")


REGISTRY_KINDS = ("property_company", "party_organisation", "owners_committee", "grid_worker", "building_leader",
                  "cross_appointment", "compound_attributes")


def requests_for(world: dict, path: str, operation: dict) -> list[tuple[str, dict]]:
    """Concrete GET requests of one route, reaching the rows that hold odd values wherever ids are involved."""
    ids = world["ids"]
    lon, lat = world["point"]
    layer_codes = ids["features"]
    tiles = [tile_of(lon, lat, z) for z in (10, 14)]
    by_path = {
        "/analytics/companies/{company_id}/credit-file": [
            (f"/analytics/companies/{company}/credit-file", {}) for company in world["companies"]],
        "/analytics/companies/{company_id}/compounds.geojson": [
            (f"/analytics/companies/{company}/compounds.geojson", {}) for company in world["companies"]],
        "/analytics/evaluations/{period}": [(f"/analytics/evaluations/{p}", params) for p in ("2026H1", "2026")
                                            for params in ({}, {"within": ",".join(layer_codes["street"])})],
        "/analytics/subsidy/{period}": [("/analytics/subsidy/2026H1", {})],
        "/analytics/programme/{figure}": [(f"/analytics/programme/{figure}", {"level": level})
                                          for figure in ("old_estate_coverage", "fee_collection", "gap_compounds")
                                          for level in ("street", "community")],
        "/complaints/{complaint_id}/suggestion": [(f"/complaints/{c}/suggestion", params) for c in ids["complaints"]
                                                  for params in ({}, {"or_newest": "true"})],
        "/complaints/imports/{batch_id}": [(f"/complaints/imports/{ids['batch']}", {})],
        "/complaints/imports/{batch_id}/rejected.csv": [(f"/complaints/imports/{ids['batch']}/rejected.csv", {})],
        "/complaints/{complaint_id}/duplicates": [(f"/complaints/{c}/duplicates", {}) for c in ids["complaints"]],
        "/complaints/{complaint_id}/placement": [(f"/complaints/{c}/placement", {}) for c in ids["complaints"]],
        "/layers/{layer}.geojson": [(f"/layers/{layer}.geojson", params) for layer in LAYERS
                                    for params in ({}, {"bbox": world["bbox"]},
                                                   {"parent": layer_codes["street"][0]})],
        "/ogc/collections/{collection_id}": [(f"/ogc/collections/{c}", {})
                                             for c in (*LAYERS, "party_organisation", "complaint")],
        "/ogc/collections/{collection_id}/items": [
            (f"/ogc/collections/{c}/items", params) for c in (*LAYERS, "party_organisation", "complaint")
            for params in ({"limit": "10000"}, {"limit": "10000", "datetime": "2026-01-01/.."},
                           {"limit": "10000", "bbox": world["bbox"]})],
        "/ogc/collections/{collection_id}/items/{feature_id}": [
            *((f"/ogc/collections/{layer}/items/{code}", {}) for layer in LAYERS for code in layer_codes[layer]),
            *((f"/ogc/collections/party_organisation/items/{code}", {}) for code in ids["parties"]),
            *((f"/ogc/collections/complaint/items/{c}", {}) for c in ids["complaints"])],
        "/open311/v2/discovery.{fmt}": [("/open311/v2/discovery.json", {})],
        "/open311/v2/requests.{fmt}": [
            (f"/open311/v2/requests.{fmt}", params) for fmt in ("json", "xml")
            for params in ({}, {"service_request_id": ",".join(map(str, ids["complaints"]))},
                           {"start_date": "2000-01-01T00:00:00Z", "end_date": "2030-01-01T00:00:00Z"},
                           {"start_date": "0001-01-01T00:00:00Z", "extensions": "true", "page_size": "1000"})],
        "/open311/v2/requests/{name}": [(f"/open311/v2/requests/{c}.{fmt}", params) for c in ids["complaints"]
                                        for fmt in ("json", "xml") for params in ({}, {"extensions": "true"})],
        "/open311/v2/requests/export.{fmt}": [
            (f"/open311/v2/requests/export.{fmt}", {"start_date": start, "end_date": end, "extensions": "true"})
            for fmt in ("json", "csv") for start, end in (("1899-06-01T00:00:00Z", "1900-05-31T00:00:00Z"),
                                                         ("2026-01-01T00:00:00Z", "2026-12-31T00:00:00Z"))],
        "/open311/v2/services.{fmt}": [("/open311/v2/services.json", {})],
        "/open311/v2/services/{name}": [("/open311/v2/services/E0101.json", {})],
        "/open311/v2/tokens/{name}": [("/open311/v2/tokens/none.json", {})],
        "/tickets/{ticket_id}": [(f"/tickets/{t}", {}) for t in ids["tickets"]],
        "/tickets/{ticket_id}/photos/{photo_id}": [(f"/tickets/{world['photo_ticket']}/photos/1", {})],
        "/tickets/tiles/{z}/{x}/{y}.mvt": [(f"/tickets/tiles/{z}/{x}/{y}.mvt", {}) for z, x, y in tiles],
        "/tiles/{layer}.json": [(f"/tiles/{layer}.json", {}) for layer in (*LAYERS, "complaint")],
        "/basemap/{z}/{x}/{y}": [(f"/basemap/{z}/{x}/{y}.pbf", {}) for z, x, y in tiles],
        "/tickets/rates/tickets": [("/tickets/rates/tickets", {"rate": rate, "level": "street", "unit": code})
                                   for rate in ("response", "satisfaction") for code in layer_codes["street"]],
        "/tickets/assignees": [("/tickets/assignees", {"kind": "community", "code": code})
                               for code in layer_codes["community"]],
        "/reports/jobs/{job_id}": [("/reports/jobs/none", {})],
        "/evaluation/subsidy-ledger/{period}": [("/evaluation/subsidy-ledger/2026H1", {})],
        **{f"/registry/{{kind}}/{what}.{fmt}": [(f"/registry/{kind}/{what}.{fmt}", {}) for kind in REGISTRY_KINDS]
           for what in ("template", "export") for fmt in ("csv", "xlsx")},
        "/registry/compounds/{compound_code}/parties": [(f"/registry/compounds/{code}/parties", {})
                                                        for code in layer_codes["compound"]],
        "/reports/jobs/{job_id}/report.pdf": [("/reports/jobs/none/report.pdf", {})],
        "/tiles/{layer}/{z}/{x}/{y}.mvt": [(f"/tiles/{layer}/{z}/{x}/{y}.mvt", {})
                                           for layer in (*LAYERS, "complaint") for z, x, y in tiles],
    }
    if path in by_path:
        return by_path[path]
    assert "{" not in path, f"no requests for the route {path}: add them to requests_for"
    required = {
        "period": PERIODS, "bbox": (world["bbox"],), "lon": (str(lon),), "lat": (str(lat),), "q": ("1号楼", "社区"),
        "ids": (",".join(map(str, world["companies"])),), "start": ("2026-01-01",), "end": ("2026-12-31",),
    }
    names = [p["name"] for p in operation.get("parameters", []) if p.get("required")]
    for name in names:
        assert name in required, f"no value for the required parameter {name} of {path}"
    combos: list[dict] = [{}]
    for name in names:
        combos = [{**combo, name: value} for combo in combos for value in required[name]]
    optional = {p["name"] for p in operation.get("parameters", [])} - set(names)
    extra = {}
    if "limit" in optional and path.startswith(("/tickets", "/map/complaints")):
        extra["limit"] = "1000"
    found = [(path, {**combo, **extra}) for combo in combos]
    if path.startswith("/analytics/") and "format" in optional:
        found += [(path, {**combo, "format": "csv"}) for combo in combos]
    if path in ("/tickets", "/tickets.geojson"):
        found += [(path, {"sort": sort, "limit": "1000"}) for sort in ("due", "reported", "-reported")]
        found += [(path, {"overdue": "true", "limit": "1000"})]
    if path == "/map/complaints.geojson":
        found += [(path, {"bbox": world["bbox"], "date_from": "2000-01-01", "date_to": "2030-01-01"})]
    return found


def test_every_get_route_reads_odd_values_without_a_server_error(sweep_world):
    world = sweep_world
    written = world["written"]
    values = {(table, value) for table, _, value in written.stored}
    assert {table for table, _ in values} >= {"complaint", "ticket", "ticket_event", "intake_batch", *LAYERS}
    assert any(value == "-infinity" for _, _, value in written.stored)
    errors: list[tuple[str, str, dict, int, str]] = []
    sent = 0
    routes = 0
    for path, operation in ROUTES:
        requests = requests_for(world, path, operation)
        routes += 1
        for role in ROLES:
            headers = {"Authorization": f"Bearer {world['tokens'][role]}"} if role != "public" else {}
            with world["server"].client(headers=headers) as client:
                for url, params in requests:
                    answer = client.get(url, params=params)
                    sent += 1
                    if answer.status_code >= 500:
                        errors.append((role, url, params, answer.status_code, answer.text[:200]))
    print(f"\nodd-value read sweep: {routes} GET routes x {len(written.stored)} odd values stored "
          f"({len(values)} kinds over {len({t for t, _ in values})} tables; {len(written.refused)} refused by "
          f"the schema) x {len(ROLES)} roles = {sent} requests, {len(errors)} server errors")
    by_route: dict[str, list] = {}
    for role, url, params, status, _ in errors:
        by_route.setdefault(url, []).append((role, params, status))
    assert not errors, "\n".join(f"{url}: {len(found)} x, e.g. {found[0]}" for url, found in by_route.items())
