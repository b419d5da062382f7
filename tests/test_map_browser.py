"""The map at /map, driven by clicking in Debian's Chromium against the running app on the small city.

Each user's main task is done by clicking: anyone asks "who is responsible here"; a grid worker logs in,
opens one of its tickets and updates it with a note and a photo; a street office draws an area and assigns its
tickets in bulk; a planner reads coverage and hotspots. Every page checks that no request left the app.
"""

from __future__ import annotations

import json
import struct
import zlib

import httpx
import psycopg
import pytest

from gis.db.engine import libpq_url
from tests.browser.harness import (
    Browser,
    bearer_token,
    checked_page,
    click_map_centre,
    map_pixel,
    screenshot,
    settle,
    sign_in,
    wait_until,
)
from tests.conftest import LiveServer
from tests.users import create_users

PASSWORD = "map-test-password-1"


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def city(city_db) -> dict:
    """Facts of the small city the tests need, read straight from the tables, and the test users."""
    street, = sql(city_db, "SELECT code FROM street WHERE valid_to IS NULL ORDER BY code LIMIT 1")[0]
    # a building of a managed compound whose grid has a grid worker, to click on
    building = sql(city_db, """
        SELECT b.code, ST_X(ST_PointOnSurface(b.geom)), ST_Y(ST_PointOnSurface(b.geom)), c.code, c.name,
               c.property_company_id, b.number
        FROM building b JOIN compound c ON c.code = b.compound_code AND c.valid_to IS NULL
        JOIN micro_grid m ON m.code = b.micro_grid_code AND m.valid_to IS NULL
        WHERE b.valid_to IS NULL AND c.property_company_id IS NOT NULL AND m.grid_code LIKE %s
          AND EXISTS (SELECT 1 FROM grid_worker w WHERE w.grid_code = m.grid_code)
          AND ST_Area(b.geom::geography) > 300
        ORDER BY b.code LIMIT 1""", (street + "%",))[0]
    company_id = building[5]
    # the company's latest half-year puts it on the black list
    sql(city_db, """INSERT INTO company_evaluation (company_id, period, residents_score, regulator_score,
                    street_score, total_score, standing) VALUES (%s, '2026H2', 40, 50, 45, 44, 'black')
                    ON CONFLICT (company_id, period) DO UPDATE SET standing = 'black'""", (company_id,))
    company_name, standing = sql(city_db, """
        SELECT pc.name, coalesce((SELECT standing FROM company_evaluation e WHERE e.company_id = pc.id
                                  ORDER BY period DESC LIMIT 1), 'unrated')
        FROM property_company pc WHERE pc.id = %s""", (company_id,))[0]
    grid_code, = sql(city_db, "SELECT grid_code FROM micro_grid WHERE code = %s AND valid_to IS NULL",
                     (building[0][:18],))[0]
    # The loader closes most of the demo year's tickets: report a few fresh, overdue ones at the chosen building
    # (the intake trigger opens their tickets), in the street's commonest category.
    sql(city_db, """
        INSERT INTO complaint (source, external_id, category_code, description, address, reported_at, geom,
                               original_x, original_y, original_crs, match_level, placement, micro_grid_id,
                               micro_grid_code, grid_code, community_code, street_code, compound_code, building_code)
        SELECT 'patrol', 'MAPTEST' || n, top.category_code, c.description, c.address,
               now() - interval '30 days' + n * interval '1 hour', c.geom, c.original_x, c.original_y,
               c.original_crs, c.match_level, c.placement, c.micro_grid_id, c.micro_grid_code, c.grid_code,
               c.community_code, c.street_code, c.compound_code, c.building_code
        FROM (SELECT * FROM complaint WHERE micro_grid_code = %s AND compound_code IS NOT NULL
              ORDER BY id LIMIT 1) c
        CROSS JOIN generate_series(1, 6) n
        CROSS JOIN (SELECT category_code FROM complaint WHERE street_code = %s
                    GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1) top""", (building[0][:18], street))
    worker_phone, = sql(city_db, "SELECT phone FROM grid_worker WHERE grid_code = %s ORDER BY id LIMIT 1",
                        (grid_code,))[0]

    create_users(city_db, PASSWORD, [
        ("map-admin", "admin"),
        ("map-street", "street", [street]),
        ("map-grid", "grid_worker", [grid_code]),
    ])
    return {
        "street": street, "building": building[0], "lon": building[1], "lat": building[2],
        "compound_code": building[3], "compound": building[4], "number": building[6],
        "company": company_name, "standing": standing, "grid": grid_code, "worker_phone": worker_phone,
    }


@pytest.fixture(scope="module")
def browser(live_app, city):
    driver = Browser(live_app.url)
    yield driver
    driver.close()


@pytest.fixture
def page(browser):
    with checked_page(browser) as page:
        yield page


def login(page, username: str) -> None:
    sign_in(page, username, PASSWORD)


def token(live_app, username: str) -> str:
    return bearer_token(live_app.url, username, PASSWORD)


def tiny_png() -> bytes:
    """A 2×2 red PNG made here, so the photo upload sends a real image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_first_view_draws_the_pyramid_with_chinese_labels(page, browser, city_db):
    browser.open_map(page)
    counts = page.evaluate("""() => Object.fromEntries(['street', 'community'].map(
        (name) => [name, window.gridgov.layers[name].group.getLayers().length]))""")
    expected = dict(sql(city_db, """SELECT 'street', count(*) FROM street WHERE valid_to IS NULL
                                    UNION ALL SELECT 'community', count(*) FROM community WHERE valid_to IS NULL"""))
    assert counts == expected
    # the unit names are labels at the zoom that suits them (streets zoomed out, communities closer)
    names = {name for name, in sql(city_db, "SELECT name FROM street WHERE valid_to IS NULL UNION ALL "
                                            "SELECT name FROM community WHERE valid_to IS NULL")}
    labels = set(page.locator(".leaflet-tooltip.label.street, .leaflet-tooltip.label.community").all_inner_texts())
    assert labels and labels <= names
    assert "v=" in page.url and "l=street" in page.url
    screenshot(page, "map-overview")


def test_who_is_responsible_here_by_clicking(page, browser, city, live_app):
    fragment = f"#v=18/{city['lat']:.6f}/{city['lon']:.6f}&l=street,community,grid,micro_grid,compound,building"
    browser.open_map(page, fragment)
    # buildings are labelled with their numbers at this zoom
    assert f"{city['number']}号楼" in page.locator(".leaflet-tooltip.label.building").all_inner_texts()
    click_map_centre(page)
    panel = page.locator("#responsibility")
    panel.wait_for()
    text = panel.inner_text()
    assert city["compound"] in text and city["company"] in text
    assert page.locator("[data-standing]").get_attribute("data-standing") == city["standing"]
    assert {"black": "黑榜", "red": "红榜"}.get(city["standing"], "") in text
    assert city["worker_phone"] not in text and "联系方式仅对登录的工作人员显示" in text
    screenshot(page, "map-responsibility-public")

    login(page, "map-street")
    click_map_centre(page)
    wait_until(page, f"document.querySelector('#responsibility') && "
                           f"document.querySelector('#responsibility').innerText.includes('{city['worker_phone']}')")
    screenshot(page, "map-responsibility-staff")


def test_search_filters_and_shared_link(page, browser, city, city_db):
    browser.open_map(page)
    page.fill("#search", f"{city['compound']}{city['number']}号楼")
    page.locator("#search-results li[data-kind=building]").first.click()
    page.locator("#responsibility").wait_for()
    settle(page)
    centre = page.evaluate("() => { const c = window.gridgov.map.getCenter(); return [c.lng, c.lat]; }")
    inside, = sql(city_db, "SELECT ST_Intersects(geom, ST_Buffer(ST_SetSRID(ST_MakePoint(%s, %s), 4326), 0.0003))"
                           " FROM building WHERE code = %s AND valid_to IS NULL", (*centre, city["building"]))[0]
    assert inside, "the map did not move to the building found"

    # a hotline ticket number finds its complaint
    number, complaint_id = sql(city_db, "SELECT external_id, id FROM complaint WHERE external_id LIKE 'MAPTEST%%'"
                                        " AND geom IS NOT NULL ORDER BY id LIMIT 1")[0]
    page.fill("#search", number)
    page.locator("#search-results li[data-kind=complaint]").first.click()
    wait_until(page, f"document.querySelector('#panel-body h3') && "
                     f"document.querySelector('#panel-body h3').textContent.includes('#{complaint_id}')")
    settle(page)

    category, = sql(city_db, """SELECT category_code FROM complaint WHERE street_code = %s
                                GROUP BY 1 ORDER BY count(*) DESC LIMIT 1""", (city["street"],))[0]
    page.click("[data-tab=filters]")
    page.select_option("#filter-category", [category])
    page.check("#filter-overdue")
    page.click("#filter-apply")
    settle(page)
    shown = page.evaluate("() => window.gridgov.layers.complaint.points.map((f) => f.properties)")
    assert shown and all(p["category"] == category and p["overdue"] for p in shown)
    link = page.url
    assert f"cat={category}" in link and "od=1" in link

    again = browser.new_page()
    try:
        again.goto(link)
        wait_until(again, "window.gridgov && window.gridgov.ready === true")
        settle(again)
        assert again.evaluate("() => window.gridgov.map.getZoom()") == page.evaluate(
            "() => window.gridgov.map.getZoom()")
        assert again.locator("#filter-category").evaluate("(s) => [...s.selectedOptions].map((o) => o.value)") \
            == [category]
        assert again.is_checked("#filter-overdue")
        reopened = again.evaluate("() => window.gridgov.layers.complaint.points.map((f) => f.properties)")
        assert reopened and all(p["category"] == category and p["overdue"] for p in reopened)
    finally:
        again.close()


def test_grid_worker_updates_a_ticket_with_note_and_photo(page, browser, city, city_db, live_app, tmp_path):
    # a community officer has handled one ticket of the worker's grid: the worker goes to check it
    ticket_id, = sql(city_db, """SELECT t.id FROM ticket t JOIN complaint c ON c.id = t.complaint_id
                                 WHERE t.grid_code = %s AND t.state = 'dispatched' AND c.geom IS NOT NULL
                                 ORDER BY t.id LIMIT 1""", (city["grid"],))[0]
    admin = {"Authorization": f"Bearer {token(live_app, 'map-admin')}"}
    for action in ("accept", "handle"):
        response = httpx.post(f"{live_app.url}/tickets/{ticket_id}/transitions", headers=admin,
                              json={"action": action, "note": "已处理"})
        assert response.status_code == 200, response.text

    browser.open_map(page)
    login(page, "map-grid")
    page.locator(f"#my-tickets li[data-ticket='{ticket_id}']").click()
    page.locator(f"#ticket[data-ticket='{ticket_id}']").wait_for()
    page.select_option("#transition-action", "verify")
    page.fill("#transition-note", "现场核查：已修复，居民满意")
    photo = tmp_path / "site.png"
    photo.write_bytes(tiny_png())
    page.set_input_files("#transition-photo", str(photo))
    page.click("#transition-submit")
    page.locator(f"#ticket[data-ticket='{ticket_id}'][data-state='closed']").wait_for()
    assert "1 张" in page.locator("#ticket-photos").inner_text()
    screenshot(page, "map-grid-worker-ticket")

    state, = sql(city_db, "SELECT state FROM ticket WHERE id = %s", (ticket_id,))[0]
    notes = [note for note, in sql(city_db, "SELECT note FROM ticket_event WHERE ticket_id = %s AND action = 'verify'",
                                   (ticket_id,))]
    photos, = sql(city_db, "SELECT count(*) FROM ticket_photo WHERE ticket_id = %s", (ticket_id,))[0]
    assert (state, notes, photos) == ("closed", ["现场核查：已修复，居民满意"], 1)


def test_street_office_draws_an_area_and_assigns_in_bulk(page, browser, city, city_db):
    # an area around the chosen compound
    minx, miny, maxx, maxy = sql(city_db, """SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM
        (SELECT ST_Expand(geom, 0.0015) AS e FROM compound WHERE code = %s AND valid_to IS NULL) box""",
                                 (city["compound_code"],))[0]
    browser.open_map(page, f"#v=16/{(miny + maxy) / 2:.6f}/{(minx + maxx) / 2:.6f}&l=street,community,grid,compound")
    login(page, "map-street")
    page.click("#draw-area")
    corners = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy)]
    for lon, lat in corners:
        page.mouse.click(*map_pixel(page, lon, lat))
    page.click("#finish-area")
    wait_until(page, "document.querySelector('#area-summary').textContent.includes('件')")
    drawn = page.evaluate("() => window.gridgov.drawn.vertices.map((p) => [p.lng, p.lat])")
    ring = json.dumps({"type": "Polygon", "coordinates": [drawn + [drawn[0]]]})
    expected = {row[0] for row in sql(city_db, """
        SELECT t.id FROM ticket t JOIN complaint c ON c.id = t.complaint_id
        WHERE t.state IN ('reported', 'registered', 'dispatched') AND t.street_code = %s
          AND ST_Intersects(c.geom, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326))""", (city["street"], ring))}
    assert expected, "the drawn area holds no open ticket; the test city changed"
    listed = set(page.evaluate("() => window.gridgov.areaTickets.map((t) => t.id)"))
    assert listed == expected

    option = page.locator("#assignee option", has_text="综合行政执法中队").first
    page.select_option("#assignee", option.get_attribute("value"))
    page.click("#assign-button")
    page.click("#assign-confirm")  # the confirmation names the count and the target first
    wait_until(page, "document.querySelector('#assign-result').dataset.assigned !== undefined")
    assert page.locator("#assign-result").get_attribute("data-assigned") == str(len(expected))
    screenshot(page, "map-street-bulk-assign")
    rows = sql(city_db, "SELECT assignee_kind, assignee_code, department FROM ticket WHERE id = ANY(%s)",
               (sorted(expected),))
    assert set(rows) == {("street_department", city["street"], "综合行政执法中队")}


def test_planner_overlay_coverage_in_view_and_hotspots(page, browser, city, city_db):
    browser.open_map(page, f"#v=15/{city['lat']:.6f}/{city['lon']:.6f}&l=street,community&tab=planner")
    page.check("#planner-toggle")
    wait_until(page, "document.querySelector('#coverage-summary')")
    settle(page)
    wait_until(page, "document.querySelector('#hotspot-note').dataset.units !== undefined")
    west, south, east, north = page.evaluate(
        "() => { const b = window.gridgov.map.getBounds(); "
        "return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; }")
    expected = dict(sql(city_db, """
        SELECT management_mode, count(*) FROM compound
        WHERE valid_to IS NULL AND ST_Intersects(ST_Centroid(ST_Envelope(geom)), ST_MakeEnvelope(%s, %s, %s, %s, 4326))
        GROUP BY 1""", (west, south, east, north)))
    shown = dict(page.evaluate("""() => [...document.querySelectorAll('#coverage-figures tr[data-mode]')].map(
        (row) => [row.dataset.mode, Number(row.children[1].textContent)])"""))
    assert {mode: count for mode, count in shown.items() if count} == expected
    units, = sql(city_db, "SELECT count(*) FROM micro_grid WHERE valid_to IS NULL")[0]
    assert page.locator("#hotspot-note").get_attribute("data-units") == str(units)
    screenshot(page, "map-planner-overlay")


def test_configured_base_map_is_requested_from_the_configured_address(browser, city_db):
    server = LiveServer(city_db, {"GRIDGOV_API_BASE_TILE_URL": "/static/base-tiles/{z}/{x}/{y}.png",
                                  "GRIDGOV_API_BASE_TILE_ATTRIBUTION": "本地瓦片"})
    try:
        driver = browser.sibling(server.url)
    except Exception:
        server.stop()
        raise
    try:
        page = driver.new_page()
        driver.open_map(page)
        assert any("/static/base-tiles/" in url for url in driver.requests)
        assert "本地瓦片" in page.locator(".leaflet-control-attribution").inner_text()
        assert driver.foreign_requests() == []
    finally:
        driver.close()
        server.stop()


def test_reviewer_places_an_unmatched_complaint_by_clicking(page, browser, city, city_db):
    category, = sql(city_db, "SELECT code FROM category ORDER BY code LIMIT 1")[0]
    complaint_id, = sql(city_db, """
        INSERT INTO complaint (source, category_code, description, address, reported_at, match_level, placement,
                               street_code)
        VALUES ('hotline', %s, '楼道堆放杂物', %s, now(), 'street', 'review', %s) RETURNING id""",
                        (category, f"{city['compound']}附近", city["street"]))[0]
    browser.open_map(page, f"#v=18/{city['lat']:.6f}/{city['lon']:.6f}&l=street,community,grid,micro_grid")
    login(page, "map-street")
    page.locator(f"#review-queue li[data-complaint='{complaint_id}']").click()
    page.mouse.click(*map_pixel(page, city["lon"], city["lat"]))
    wait_until(page, f"document.querySelector('#review-hint').dataset.placed === '{complaint_id}'")
    screenshot(page, "map-review-placement")
    placement, micro_grid, compound = sql(
        city_db, "SELECT placement, micro_grid_code, compound_code FROM complaint WHERE id = %s", (complaint_id,))[0]
    assert (placement, micro_grid, compound) == ("manual", city["building"][:18], city["compound_code"])
    assert page.locator(f"#review-queue li[data-complaint='{complaint_id}']").count() == 0


def test_complaint_counts_per_unit_match_the_tables(http, city, city_db, live_app):
    minx, miny, maxx, maxy = sql(city_db, "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                          "(SELECT ST_Extent(geom) AS e FROM street WHERE valid_to IS NULL) x")[0]
    bbox = f"{minx},{miny},{maxx},{maxy}"
    overdue, = sql(city_db, """SELECT count(*) FROM ticket WHERE due_at < now()
                               AND state IN ('reported', 'registered', 'dispatched', 'in_progress', 'handled')""")[0]
    placed, = sql(city_db, "SELECT count(*) FROM complaint WHERE micro_grid_id IS NOT NULL")[0]
    for level in ("grid", "micro_grid"):
        marks = http.get("/map/complaint-counts.json", params={"bbox": bbox, "level": level}).json()
        assert sum(m[2] for m in marks) == placed and sum(m[3] for m in marks) == overdue
        assert all(minx <= m[0] <= maxx and miny <= m[1] <= maxy and m[2] >= m[3] >= 0 for m in marks)
    # a street office counts its own street only
    street_only, = sql(city_db, "SELECT count(*) FROM complaint WHERE micro_grid_id IS NOT NULL AND street_code = %s",
                       (city["street"],))[0]
    headers = {"Authorization": f"Bearer {token(live_app, 'map-street')}"}
    marks = http.get("/map/complaint-counts.json", params={"bbox": bbox}, headers=headers).json()
    assert 0 < sum(m[2] for m in marks) == street_only < placed
    assert http.get("/map/complaint-counts.json", params={"bbox": bbox, "level": "building"}).status_code == 422
    assert http.get("/map/complaint-counts.json", params={"bbox": "1,2,3"}).status_code == 400


def test_building_labels_are_numbers_inside_their_buildings(http, city, city_db):
    d = 0.002
    bbox = (city["lon"] - d, city["lat"] - d, city["lon"] + d, city["lat"] + d)
    labels = http.get("/map/building-labels.json", params={"bbox": ",".join(map(str, bbox))}).json()
    expected, = sql(city_db, "SELECT count(*) FROM building WHERE valid_to IS NULL AND "
                             "geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)", bbox)[0]
    assert len(labels) == expected > 0
    inside, = sql(city_db, """SELECT bool_and(EXISTS (SELECT 1 FROM building b WHERE b.valid_to IS NULL
                                  AND b.number = l.number
                                  AND ST_Contains(b.geom, ST_SetSRID(ST_MakePoint(l.lon, l.lat), 4326))))
                              FROM json_to_recordset(%s::json) AS l(lon float8, lat float8, number int)""",
                  (json.dumps([{"lon": x, "lat": y, "number": n} for x, y, n in labels]),))[0]
    assert inside
    assert http.get("/map/building-labels.json", params={"bbox": "0,0,0,0"}).status_code == 400


def test_complaints_on_the_canvas_open_by_clicking(page, browser, city, city_db):
    # the six fresh complaints at the chosen building are one cluster at the deepest zooms: it lists them
    lon, lat = sql(city_db, "SELECT ST_X(ST_SnapToGrid(geom, 0.0005)), ST_Y(ST_SnapToGrid(geom, 0.0005)) "
                            "FROM complaint WHERE external_id = 'MAPTEST1'")[0]
    browser.open_map(page, f"#v=19/{lat:.6f}/{lon:.6f}&l=street,community,complaint")
    at_spot, = sql(city_db, """SELECT count(*) FROM complaint WHERE geom IS NOT NULL
                               AND ST_Equals(ST_SnapToGrid(geom, 0.0005), ST_SetSRID(ST_MakePoint(%s, %s), 4326))""",
                   (lon, lat))[0]
    assert at_spot >= 6
    page.mouse.click(*map_pixel(page, lon, lat))
    page.locator("#cluster-list").wait_for()
    assert page.locator("#panel-body h3").inner_text() == f"此处投诉 {at_spot} 件"
    first = page.locator("#cluster-list li").first
    complaint_id = first.get_attribute("data-complaint")
    first.click()
    wait_until(page, f"document.querySelector('#panel-body h3').textContent === '投诉 #{complaint_id}'")
    # zoomed out, a click on a cluster zooms in to it
    page.evaluate(f"() => window.gridgov.map.setView([{lat}, {lon}], 14, {{animate: false}})")
    settle(page)
    assert page.evaluate("() => window.gridgov.layers.complaint.source") == "micro_grid"
    spot = page.evaluate("""() => { const layer = window.gridgov.layers.complaint.layer;
        const item = layer._items.find((i) => !i.single); return item ? [item.x, item.y] : null; }""")
    assert spot, "no cluster drawn at zoom 14"
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + spot[0], box["y"] + spot[1])
    settle(page)
    assert page.evaluate("() => window.gridgov.map.getZoom()") == 16
    screenshot(page, "map-complaint-clusters")
