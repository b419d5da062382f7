"""The privacy matrix: every role × every GET route of the OpenAPI document × every kind of personal field.

Two streets of the tiny city carry known markers: reporters' names and phones, phone and identity numbers,
units and rooms inside the text and the address, staff notes, party secretaries, grid workers' and property
companies' contacts, rejected import rows and the exact point of each complaint. The policy (README, privacy
table) is written out below as the roles allowed to read each marker; the walk asserts that no answer carries
a marker to anyone else, and that the allowed readers do get each one (so the test can fail both ways).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from conftest import LiveServer, _clone
from test_tickets_support import GRIDS, PASSWORD, build_city, make_users

USERS = ["admin", "planner", "street1", "street2", "community1", "community2", "grid1", "grid2", "grid3", "grid4",
         "company1", "company2", "public"]
STAFF = {"admin", "street1", "street2", "community1", "community2", "grid1", "grid2", "grid3", "grid4",
         "company1", "company2"}
GRID_OF = {1: GRIDS[0], 2: GRIDS[2]}
WORKER_OF = {1: "grid1", 2: "grid3"}
POINT = {1: (117.1031234, 36.2047891), 2: (117.1231234, 36.2047891)}


def markers(n: int) -> dict[str, str]:
    return {
        "reporter_name": f"隐私{'甲乙'[n - 1]}某", "reporter_phone": f"1370000{n}111",
        "text_phone": f"1370000{n}222", "text_id": f"37090219900101{n}23X", "unit_room": f"7单元110{n}室",
        "staff_note": f"内部备注{n}号核查", "secretary_name": f"书记{'甲乙'[n - 1]}号",
        "secretary_phone": f"1370000{n}333", "company_contact": f"1370000{n}444",
        "worker_phone": f"1380000000{GRIDS.index(GRID_OF[n])}",
        "exact_lon": f"{POINT[n][0]:.7f}"[:9], "exact_lat": f"{POINT[n][1]:.7f}"[:8],
    }


def allowed(n: int) -> dict[str, set[str]]:
    """Who may read each marker of street n: the policy, written out."""
    complaint_staff = {"admin", f"street{n}", f"community{n}", WORKER_OF[n], f"company{n}"}
    chain = {"admin", f"street{n}", f"community{n}", WORKER_OF[n]}
    return {
        "reporter_name": complaint_staff, "reporter_phone": complaint_staff, "text_phone": complaint_staff,
        "text_id": complaint_staff, "unit_room": complaint_staff, "staff_note": complaint_staff,
        "secretary_name": chain, "secretary_phone": chain,
        "company_contact": chain | {f"company{n}"}, "worker_phone": chain,
        "exact_lon": STAFF | {"planner"}, "exact_lat": STAFF | {"planner"},
    }


IMPORT_MARKERS = {"reporter_name": "导入隐私甲某", "reporter_phone": "13700001555"}
IMPORT_ALLOWED = {"admin", "street1"}


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


@pytest.fixture(scope="module")
def world(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    made = build_city(url)
    make_users(url, made["companies"])
    complaints, tickets = {}, {}
    with psycopg.connect(url) as conn:
        for n in (1, 2):
            m, grid = markers(n), GRID_OF[n]
            lon, lat = POINT[n]
            compound = f"{grid[:12]}C0001"
            complaints[n] = conn.execute(
                "INSERT INTO complaint (category_code, description, address, reported_at, geom, match_level, "
                "placement, street_code, community_code, grid_code, micro_grid_code, compound_code, reporter_name, "
                "reporter_phone, source) VALUES ('E0601', %s, %s, now() - interval '1 hour', "
                "ST_SetSRID(ST_MakePoint(%s, %s), 4326), 'coordinates', 'inside', %s, %s, %s, %s, %s, %s, %s, "
                "'app') RETURNING id",
                [f"楼上漏水，请联系{m['text_phone']}，身份证{m['text_id']}，住9号楼{m['unit_room']}",
                 f"小区{n}9号楼{m['unit_room']}", lon, lat, grid[:9], grid[:12], grid, grid + "001", compound,
                 m["reporter_name"], m["reporter_phone"]]).fetchone()[0]
            tickets[n] = conn.execute("SELECT id FROM ticket WHERE complaint_id = %s", [complaints[n]]).fetchone()[0]
            conn.execute("UPDATE party_organisation SET secretary_name = %s, secretary_phone = %s WHERE unit_code = %s",
                         [m["secretary_name"], m["secretary_phone"], grid])
            conn.execute("UPDATE property_company SET contact_name = '联系人', contact_phone = %s WHERE id = %s",
                         [m["company_contact"], made["companies"][n - 1]])
    server = LiveServer(url)
    with server.client() as http:
        tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in USERS if name != "public"}

    def as_user(name):
        headers = {"Authorization": f"Bearer {tokens[name]}"} if name in tokens else {}
        return server.client(headers=headers)

    photos = {}
    for n in (1, 2):
        with as_user(f"street{n}") as http:
            note = http.post(f"/tickets/{tickets[n]}/comments", json={"note": markers(n)["staff_note"]})
            assert note.status_code == 201, note.text
            photo = http.post(f"/tickets/{tickets[n]}/photos", files={"file": ("a.png", PNG, "image/png")})
            assert photo.status_code == 201, photo.text
            photos[n] = photo.json().get("photo_id") or photo.json().get("id")
    with as_user("street1") as http:
        rows = ("工单编号,受理时间,反映内容,来电人,联系电话,诉求类别,经度,纬度\n"
                f"P-1,不是时间,漏水,{IMPORT_MARKERS['reporter_name']},{IMPORT_MARKERS['reporter_phone']},"
                "E0601,117.105,36.205\n")
        report = http.post("/complaints/imports", files={"file": ("export.csv", rows.encode("utf-8"), "text/csv")})
        assert report.status_code == 200, report.text
        batch = report.json()["batch_id"]
        assert report.json()["rejected"] == 1
    yield {"url": url, "server": server, "as_user": as_user, "complaints": complaints, "tickets": tickets,
           "photos": photos, "batch": batch, "companies": made["companies"]}
    server.stop()


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")
BBOX = "117.09,36.19,117.15,36.23"


REGISTRY_KINDS = ("property_company", "party_organisation", "owners_committee", "grid_worker", "building_leader",
                  "cross_appointment", "compound_attributes")
"""Every registry kind, each exported as CSV (the XLSX export is the same records, compressed)."""


def requests_for(path: str, world: dict) -> list[tuple[str, dict]]:
    """The concrete requests that exercise one GET route: its path parameters filled with both streets' objects
    and the query parameters the route needs. A route missing here fails the walk."""
    c, t = world["complaints"], world["tickets"]
    both = (1, 2)
    table = {
        "/health": [{}], "/layers": [{}], "/layers/{layer}.geojson": [("/layers/grid.geojson", {})],
        "/map/config.json": [{}], "/map/categories.json": [{}],
        "/map/search.json": [{"q": str(c[n])} for n in both] + [{"q": "小区1"}],
        "/map/property-companies.json": [{"ids": ",".join(map(str, world["companies"]))}],
        "/map/party-organisations.geojson": [
            {"bbox": BBOX, "kinds": "community_committee,grid_branch,compound_branch"}],
        "/map/complaints.geojson": [{"bbox": BBOX}], "/map/complaint-counts.json": [{"bbox": BBOX, "level": "grid"}],
        "/map/building-labels.json": [{"bbox": BBOX}],
        "/map/integrity.geojson": [{}],
        "/responsibility": [{"lon": POINT[n][0], "lat": POINT[n][1]} for n in both],
        "/tiles": [{}], "/tiles/{layer}.json": [("/tiles/complaint.json", {})],
        "/basemap.json": [{}], "/basemap/{z}/{x}/{y}": [("/basemap/15/27043/13117.pbf", {})],
        "/tiles/{layer}/{z}/{x}/{y}.mvt": [("/tiles/complaint/%d/%d/%d.mvt" % tile_of(*POINT[n], 16), {})
                                           for n in both],
        "/ogc": [{}], "/ogc/conformance": [{}], "/ogc/api": [{}], "/ogc/collections": [{}],
        "/ogc/collections/{collection_id}": [(f"/ogc/collections/{name}", {})
                                             for name in ("complaint", "party_organisation")],
        "/ogc/collections/{collection_id}/items": [(f"/ogc/collections/{name}/items", {"limit": 1000})
                                                   for name in ("complaint", "party_organisation")],
        "/ogc/collections/{collection_id}/items/{feature_id}": [
            (f"/ogc/collections/complaint/items/{c[n]}", {}) for n in both] + [
            (f"/ogc/collections/party_organisation/items/P{GRID_OF[n]}", {}) for n in both],
        "/analytics/complaints": [{}], "/analytics/hotspots": [{}], "/analytics/hexagons": [{}],
        "/analytics/emerging": [{}], "/analytics/coverage": [{}],
        "/analytics/emerging-cube": [{}], "/analytics/monthly-problems": [{"limit": 3}], "/analytics/proactive": [{}],
        "/analytics/programme": [{}, {"level": "community", "code": "370902001001"}],
        "/analytics/programme/trend": [{"months": 3}],
        "/analytics/programme/{figure}": [("/analytics/programme/committee_party_share", {"level": "street"})],
        "/analytics/gaps": [{}], "/analytics/gaps.geojson": [{}],
        "/analytics/evaluations/{period}": [("/analytics/evaluations/2026H2", {})],
        "/analytics/companies/{company_id}/credit-file": [
            (f"/analytics/companies/{company}/credit-file", {}) for company in world["companies"]],
        "/analytics/companies/{company_id}/compounds.geojson": [
            (f"/analytics/companies/{company}/compounds.geojson", {}) for company in world["companies"]],
        "/evaluation/companies": [{}],
        "/analytics/subsidy/{period}": [("/analytics/subsidy/2026H2", {})],
        "/auth/me": [{}], "/users": [{}],
        "/tickets": [{"limit": 1000}, {"bbox": BBOX}], "/tickets.geojson": [{}], "/tickets.csv": [{}],
        "/tickets/tiles/{z}/{x}/{y}.mvt": [("/tickets/tiles/%d/%d/%d.mvt" % tile_of(*POINT[n], 16), {})
                                           for n in both],
        "/tickets/workflow": [{}], "/tickets/rates": [{"level": "grid"}], "/tickets/rules": [{}],
        "/tickets/deadlines": [{}], "/tickets/calendar": [{"start": "2026-01-01", "end": "2026-01-31"}],
        "/tickets/{ticket_id}": [(f"/tickets/{t[n]}", {}) for n in both],
        "/tickets/{ticket_id}/photos/{photo_id}": [(f"/tickets/{t[n]}/photos/{world['photos'][n]}", {})
                                                   for n in both],
        "/open311/v2/discovery.{fmt}": [("/open311/v2/discovery.json", {})],
        "/open311/v2/services.{fmt}": [("/open311/v2/services.json", {})],
        "/open311/v2/services/{name}": [("/open311/v2/services/E0601.json", {})],
        "/open311/v2/requests.{fmt}": [(f"/open311/v2/requests.{fmt}", params) for fmt in ("json", "xml")
                                       for params in ({}, {"extensions": "true"})],
        "/open311/v2/requests/export.{fmt}": [(f"/open311/v2/requests/export.{fmt}", {
            "start_date": (datetime.now(timezone.utc) - timedelta(days=2)).isoformat(),
            "end_date": datetime.now(timezone.utc).isoformat(), "extensions": "true"}) for fmt in ("json", "csv")],
        "/open311/v2/requests/{name}": [(f"/open311/v2/requests/{c[n]}.{fmt}", {"extensions": "true"})
                                        for n in both for fmt in ("json", "xml")],
        "/open311/v2/tokens/{name}": [("/open311/v2/tokens/nothing.json", {})],
        "/complaints/imports/{batch_id}": [(f"/complaints/imports/{world['batch']}", {})],
        "/complaints/imports/{batch_id}/rejected.csv": [(f"/complaints/imports/{world['batch']}/rejected.csv", {})],
        "/complaints/review": [{}],
        "/complaints/{complaint_id}/placement": [(f"/complaints/{c[n]}/placement", {}) for n in both],
        "/complaints/{complaint_id}/duplicates": [(f"/complaints/{c[n]}/duplicates", {}) for n in both],
        "/complaints/{complaint_id}/suggestion": [(f"/complaints/{c[n]}/suggestion", query) for n in both
                                                  for query in ({}, {"or_newest": "true"})],
        "/audit/personal-reads": [{}],
        "/tickets/rates/tickets": [{"rate": "resolution", "level": "grid", "unit": GRID_OF[n], "limit": 1000}
                                   for n in both],
        "/tickets/assignees": [{"kind": "community", "code": GRID_OF[n][:12]} for n in both],
        "/supervision/overdue": [{"limit": 1000}], "/supervision/escalations": [{}], "/supervision/stats": [{}],
        "/reports/jobs/{job_id}": [("/reports/jobs/none", {})],
        "/reports/jobs/{job_id}/report.pdf": [("/reports/jobs/none/report.pdf", {})],
        "/reports/map.html": [{"street": GRID_OF[n][:9]} for n in both] + [{"district": GRID_OF[1][:6]}],
        "/evaluation/inspections": [{"period": "2026H2"}], "/evaluation/ratings": [{"period": "2026H2"}],
        "/evaluation/surveys": [{"period": "2026H2"}], "/evaluation/rectifications": [{}],
        "/evaluation/exits": [{}], "/evaluation/subsidy-ledger/{period}": [("/evaluation/subsidy-ledger/2026H2", {})],
        "/evaluation/credit-items": [{}], "/evaluation/credit-grades": [{}], "/evaluation/credit-grades.html": [{}],
        "/field/me": [{}],
        "/field/place": [{"lon": POINT[n][0], "lat": POINT[n][1]} for n in both],
        "/complaints/similar": [{"lon": POINT[n][0], "lat": POINT[n][1], "text": "楼道堆物漏水"} for n in both],
        "/registry/kinds": [{}], "/registry/committees/expiring": [{"within_days": 3650}],
        "/registry/{kind}/template.csv": [("/registry/owners_committee/template.csv", {})],
        "/registry/{kind}/template.xlsx": [("/registry/owners_committee/template.xlsx", {})],
        "/registry/{kind}/export.csv": [(f"/registry/{kind}/export.csv", {}) for kind in REGISTRY_KINDS],
        "/registry/{kind}/export.xlsx": [("/registry/compound_attributes/export.xlsx", {})],
        "/registry/compounds/{compound_code}/parties": [(f"/registry/compounds/{GRID_OF[n][:12]}C0001/parties", {})
                                                        for n in both],
        "/registry/changes": [{}], "/registry/proposals": [{}, {"state": "rejected"}], "/registry/company": [{}],
    }
    if path not in table:
        raise AssertionError(f"GET {path} has no row in the privacy matrix: add the requests that exercise it")
    return [entry if isinstance(entry, tuple) else (path, entry) for entry in table[path]]


@pytest.fixture(scope="module")
def answers(world):
    """Every role's answer to every request of every GET route."""
    with world["as_user"]("admin") as http:
        spec = http.get("/openapi.json").json()
    routes = sorted(path for path, operations in spec["paths"].items() if "get" in operations)
    assert len(routes) > 50
    out = {}
    for name in USERS:
        with world["as_user"](name) as http:
            for route in routes:
                for path, params in requests_for(route, world):
                    response = http.get(path, params=params)
                    assert response.status_code < 500, (name, path, response.status_code, response.text[:300])
                    out[(name, route, path, str(params))] = response.content.decode("utf-8", "replace")
    return out


def test_no_answer_carries_a_field_beyond_the_policy(answers):
    leaks, checks = [], 0
    for n in (1, 2):
        rule = allowed(n)
        for field, marker in markers(n).items():
            for (name, route, path, params), body in answers.items():
                checks += 1
                if marker in body and name not in rule[field] and marker not in params:  # not an echo
                    leaks.append(f"{name} read {field} of street {n} through GET {path} {params}")
    for field, marker in IMPORT_MARKERS.items():
        for (name, route, path, params), body in answers.items():
            checks += 1
            if marker in body and name not in IMPORT_ALLOWED:
                leaks.append(f"{name} read the rejected row's {field} through GET {path}")
    assert not leaks, "\n".join(leaks[:40])
    assert checks > 10_000
    routes = {route for (_, route, _, _) in answers}
    requests = {(path, params) for (_, _, path, params) in answers}
    fields = 2 * len(markers(1)) + len(IMPORT_MARKERS)
    print(f"\nprivacy matrix: {len(USERS)} callers x {len(routes)} GET routes ({len(requests)} requests) x {fields} "
          f"fields = {checks} checks, {len(leaks)} leaks")


def test_those_allowed_do_read_each_field(answers):
    """The other half: every marker reaches every role the policy lets read it, somewhere."""
    missing = []
    for n in (1, 2):
        for field, marker in markers(n).items():
            for name in allowed(n)[field] - {"public"}:
                if not any(marker in body for (who, *_), body in answers.items() if who == name):
                    missing.append(f"{name} never read {field} of street {n}")
    for name in IMPORT_ALLOWED:
        if not any(IMPORT_MARKERS["reporter_name"] in body for (who, *_), body in answers.items() if who == name):
            missing.append(f"{name} never read its own rejected import row")
    assert not missing, "\n".join(missing)


def test_planners_read_the_text_with_numbers_units_and_rooms_masked(world, answers):
    body = answers[("planner", "/tickets/{ticket_id}", f"/tickets/{world['tickets'][1]}", "{}")]
    assert "137****1222" in body and "370902********123X" in body and "*单元***室" in body


def test_python_and_postgresql_masking_agree(world):
    from gis.access.visibility import PERSONAL_NUMBER_PATTERNS, mask_numbers, masked_sql

    samples = [
        "请联系13812345678", "+8613812345678或0538-1234567", "身份证370902199001011234，旧证370902900101123",
        "住3号楼2单元301室", "三单元502户，１２单元", "订单号2026010112345678901", "电话138 1234 5678",
        "13812345678901", "x13812345678y", "无号码", "", "3号楼", "2026-12-01 09:30", "０５３８-1234567",
    ]
    assert len(PERSONAL_NUMBER_PATTERNS) >= 4
    with psycopg.connect(world["url"]) as conn:
        for sample in samples:
            database = conn.execute(f"SELECT {masked_sql('CAST(%s AS text)')}", [sample]).fetchone()[0]
            assert database == mask_numbers(sample), sample
    assert mask_numbers("请联系13812345678") == "请联系138****5678"
    assert "1234" not in mask_numbers("身份证370902199001011234").split("身份证")[1][6:-4]


def _box(lon: float, lat: float, half: float) -> str:
    return f"{lon - half},{lat - half},{lon + half},{lat + half}"


@pytest.mark.parametrize("route", ["/tickets", "/tickets.geojson", "/map/complaints.geojson",
                                   "/ogc/collections/complaint/items"])
def test_public_filters_test_the_snapped_place_so_bisection_stops_at_its_cell(world, route):
    """A box around the exact point but not the snapped one finds nothing; a box around the snapped point but
    not the exact one finds the complaint: whatever boxes the public tries, they learn the cell, no more."""
    lon, lat = POINT[1]
    snapped = (round(lon / 0.0005) * 0.0005, round(lat / 0.0005) * 0.0005)
    assert abs(snapped[0] - lon) > 0.00005 or abs(snapped[1] - lat) > 0.00005
    wanted = {world["tickets"][1], world["complaints"][1]}

    def found(bbox: str) -> set[int]:
        with world["as_user"]("public") as http:
            body = http.get(route, params={"bbox": bbox, "limit": 1000}).json()
        items = body.get("items") or body.get("features") or []
        return {int(item["id"]) for item in items} & wanted

    assert found(_box(*snapped, 0.00002))
    assert not found(_box(lon, lat, 0.00002))
    with world["as_user"]("admin") as http:  # staff filter on the exact place
        body = http.get(route, params={"bbox": _box(lon, lat, 0.00002), "limit": 1000}).json()
        assert {int(i["id"]) for i in body.get("items") or body.get("features") or []} & wanted


def test_the_public_rating_answer_does_not_depend_on_the_phone(world):
    """Right phone on an open ticket, wrong phone, no such ticket: one status and one text."""
    from test_tickets_support import sql

    ticket = world["tickets"][1]
    right, wrong = markers(1)["reporter_phone"], "13900000000"
    answers = []
    with world["as_user"]("public") as http:
        for ticket_id, phone in ((ticket, right), (ticket, wrong), (999999, right)):
            response = http.post(f"/tickets/{ticket_id}/rating", json={"score": 5, "reporter_phone": phone})
            answers.append((response.status_code, response.json().get("detail")))
        assert len(set(answers)) == 1 and answers[0][0] == 404, answers
        # closed and rated already: still the same answer for the right phone
        sql(world["url"], "UPDATE ticket SET state = 'closed', closed_at = now(), rating = 4 WHERE id = %s", [ticket])
        response = http.post(f"/tickets/{ticket}/rating", json={"score": 5, "reporter_phone": right})
        assert (response.status_code, response.json().get("detail")) == answers[0]
