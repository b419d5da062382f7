"""Scope: a user never sees or changes a ticket outside its scope — through any endpoint, list, GeoJSON,
export or tile — and gets 404 for it, as if it did not exist. Planners see no personal data; the public sees
anonymised reports only."""

from __future__ import annotations

import re

import mapbox_vector_tile
import pytest
from conftest import LiveServer, _clone
from test_tickets_support import (
    GRIDS,
    PASSWORD,
    STREETS,
    add_complaints,
    build_city,
    grid_origin,
    make_users,
    sql,
)

USERS = ["admin", "planner", "street1", "street2", "community1", "community2", "grid1", "grid2", "grid3", "grid4",
         "company1", "company2"]


@pytest.fixture(scope="module")
def world(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    made = build_city(url)
    make_users(url, made["companies"])
    # One property ticket per grid (grid 1 and 3 in managed compounds) plus one rejected report in grid 1.
    tickets = dict(zip(GRIDS, add_complaints(url, [{"grid": grid} for grid in GRIDS])))
    rejected = add_complaints(url, [{"grid": GRIDS[0], "category": "E0201"}])[0]
    sql(url, "UPDATE ticket SET state = 'rejected' WHERE id = %s", [rejected])
    server = LiveServer(url)
    with server.client() as client:
        tokens = {name: client.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in USERS}
    yield {"url": url, "server": server, "tickets": tickets, "rejected": rejected, "tokens": tokens, **made}
    server.stop()


# Which grids' tickets each user may see.
VISIBLE = {
    "admin": GRIDS, "planner": GRIDS,
    "street1": GRIDS[:2], "street2": GRIDS[2:],
    "community1": GRIDS[:2], "community2": GRIDS[2:],
    "grid1": GRIDS[:1], "grid2": GRIDS[1:2], "grid3": GRIDS[2:3], "grid4": GRIDS[3:],
    "company1": GRIDS[:1], "company2": GRIDS[2:3],
}


def client(world, name):
    return world["server"].client(headers={"Authorization": f"Bearer {world['tokens'][name]}"})


def tile_ids(response) -> set[int]:
    decoded = mapbox_vector_tile.decode(response.content)
    return {feature["properties"]["id"] for feature in decoded.get("tickets", {}).get("features", [])}


@pytest.mark.parametrize("name", USERS)
def test_each_role_sees_exactly_its_scope_everywhere(world, name):
    tickets = world["tickets"]
    expected = {tickets[grid] for grid in VISIBLE[name]}
    hidden = set(tickets.values()) - expected
    with client(world, name) as http:
        listed = {item["id"] for item in http.get("/tickets", params={"limit": 1000}).json()["items"]}
        assert listed - {world["rejected"]} == expected
        geo = {f["id"] for f in http.get("/tickets.geojson").json()["features"]}
        assert geo - {world["rejected"]} == expected
        csv_ids = {int(line.split(",")[0]) for line in http.get("/tickets.csv").text.lstrip("\ufeff").splitlines()[1:]}
        assert csv_ids - {world["rejected"]} == expected
        # Zoom 12 tile holding the whole tiny city.
        tile = http.get("/tickets/tiles/12/3380/1605.mvt")
        assert tile.status_code == 200
        assert tile_ids(tile) - {world["rejected"]} == expected
        for ticket in hidden:
            assert http.get(f"/tickets/{ticket}").status_code == 404
            assert http.post(f"/tickets/{ticket}/comments", json={"note": "x"}).status_code == 404
            assert http.post(f"/tickets/{ticket}/transitions", json={"action": "accept"}).status_code == 404
            assert http.post(f"/tickets/{ticket}/photos", files={"file": ("a.png", b"\x89PNG\r\n\x1a\n0", "image/png")}
                             ).status_code == 404
            assert http.get(f"/tickets/{ticket}/photos/1").status_code == 404
            assert http.post(f"/tickets/{ticket}/rating", json={"score": 5}).status_code == 404
        if name in ("admin", "street1", "street2", "community1", "community2"):
            for ticket in hidden:
                moved = http.post("/tickets/assign", json={"ticket_ids": [ticket],
                                                           "assignee": {"kind": "utility", "department": "x"}})
                assert moved.status_code == 404
        for ticket in expected:
            assert http.get(f"/tickets/{ticket}").status_code == 200
        rates = http.get("/tickets/rates", params={"level": "grid"}).json()["rows"]
        assert {row["unit"] for row in rates} == set(VISIBLE[name])


def test_a_grid_worker_cannot_reach_the_next_grid_by_any_filter(world):
    next_grid_ticket = world["tickets"][GRIDS[1]]
    lon, lat = grid_origin(1)
    polygon = ('{"type":"Polygon","coordinates":[[[%f,%f],[%f,%f],[%f,%f],[%f,%f],[%f,%f]]]}'
               % (lon, lat, lon + 0.01, lat, lon + 0.01, lat + 0.01, lon, lat + 0.01, lon, lat))
    with client(world, "grid1") as http:
        for params in ({"grid": GRIDS[1]}, {"street": STREETS[0]}, {"polygon": polygon},
                       {"bbox": f"{lon},{lat},{lon + 0.01},{lat + 0.01}"}, {"state": "open"}):
            ids = {item["id"] for item in http.get("/tickets", params=params).json()["items"]}
            assert next_grid_ticket not in ids
        assert http.get("/tickets", params={"polygon": polygon}).json()["items"] == []


def test_personal_data_only_for_staff(world):
    ticket = world["tickets"][GRIDS[0]]
    with client(world, "grid1") as staff, client(world, "planner") as planner, world["server"].client() as public:
        full = staff.get(f"/tickets/{ticket}").json()
        assert full["reporter_phone"] == "13912345678" and full["reporter_name"] == "张先生"
        plan = planner.get(f"/tickets/{ticket}").json()
        assert "reporter_phone" not in plan and "reporter_name" not in plan and plan["description"]
        anon = public.get(f"/tickets/{ticket}").json()
        for field in ("reporter_phone", "reporter_name", "description", "assignee_code", "informed"):
            assert field not in anon
        # the public's address stops at the compound (街道 社区 小区), never a building, unit or room
        assert anon["address"] == "街道1社区1小区1"
        # the public's place: on the 0.0005° lattice the README's privacy table states
        assert all(abs(v / 0.0005 - round(v / 0.0005)) < 1e-6 for v in (anon["lon"], anon["lat"]))
        assert plan["description"] and not re.search(r"1[3-9]\d{9}", plan["description"])
        assert all(event["actor"] is None and event["note"] is None for event in plan["history"])
        assert all(event["actor"] is None and event["note"] is None for event in anon["history"])
        listed = public.get("/tickets").json()["items"]
        assert world["rejected"] not in {item["id"] for item in listed}
        assert all("reporter_phone" not in item for item in listed)
        assert public.get(f"/tickets/{world['rejected']}").status_code == 404
        assert public.get("/tickets.csv").status_code == 401
        assert public.get("/tickets/rates").status_code == 401
        assert planner.post(f"/tickets/{ticket}/transitions", json={"action": "accept"}).status_code == 403
        assert "13912345678" not in planner.get("/tickets.csv").text


def test_a_disabled_or_foreign_token_sees_nothing(world):
    with world["server"].client(headers={"Authorization": "Bearer not-a-token"}) as http:
        assert http.get("/tickets").status_code == 401
        assert http.get(f"/tickets/{world['tickets'][GRIDS[0]]}").status_code == 401
