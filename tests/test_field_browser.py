"""The grid worker's phone, driven in Debian's Chromium at 390×844 and 360×640 against the running app on the
small city: the demo grid worker signs in from the account menu, sees the map fitted to their grid, opens a
ticket from the 待办 list (marked on the map, the map still in sight), adds a note and a photo without changing its
state, views the photo full size, reports a new issue at the GPS position, and signs out. A screenshot of each
step goes to test-artifacts/field/, and no request leaves the app's own origin."""

from __future__ import annotations

import io
import shutil
import tempfile

import psycopg
import pytest
from PIL import Image

from gis.db.engine import libpq_url
from tests.browser.harness import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Browser, map_pixel, settle, wait_until

PASSWORD = "field-demo-password-1"
ARGS = [*CHROMIUM_ARGS, "--lang=zh-CN"]  # the browser's own words (file pickers) in Chinese, as on the phones
PHONES = {"390x844": {"width": 390, "height": 844}, "360x640": {"width": 360, "height": 640}}
SHOTS = ARTIFACTS / "field"


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


class Phone(Browser):
    """A headless Chromium that looks like a phone: a small touch viewport and, when given, a GPS position the
    page may read (geolocation permission granted)."""

    def __init__(self, app_url: str, playwright, viewport: dict, position: tuple[float, float] | None):
        self.app_url = app_url
        self._owns_playwright = False
        self.profile = tempfile.mkdtemp(prefix="gridgov-phone-")
        self.requests, self.errors = [], []
        self._playwright = playwright
        options = {"geolocation": {"longitude": position[0], "latitude": position[1], "accuracy": 8},
                   "permissions": ["geolocation"]} if position else {}
        self.context = playwright.chromium.launch_persistent_context(
            self.profile, executable_path=CHROMIUM, args=ARGS, headless=True, viewport=viewport,
            has_touch=True, is_mobile=True, device_scale_factor=2, locale="zh-CN", timezone_id="Asia/Shanghai",
            **options)
        self.context.on("request", lambda request: self.requests.append(request.url))

    def close(self) -> None:
        self.context.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def city(city_db, live_app) -> dict:
    """The demo users, the demo grid worker's grid, fresh open tickets there (one handled, awaiting the
    worker's check) and a building of the grid to stand in."""
    from gis.access.auth import hash_password

    # the loader made the demo users with a password printed once: give the two this test signs in as its own
    made = sql(city_db, "UPDATE app_user SET password_hash = %s WHERE username IN ('demo_grid_worker', 'demo_admin') "
                        "RETURNING username", (hash_password(PASSWORD),))
    assert len(made) == 2, "the small city has no demo users"
    grid, = sql(city_db, "SELECT scope_codes[1] FROM app_user WHERE username = 'demo_grid_worker'")[0]
    building, lon, lat, micro = sql(city_db, """
        SELECT b.code, ST_X(ST_PointOnSurface(b.geom)), ST_Y(ST_PointOnSurface(b.geom)), b.micro_grid_code
        FROM building b JOIN micro_grid m ON m.code = b.micro_grid_code AND m.valid_to IS NULL
        WHERE b.valid_to IS NULL AND m.grid_code = %s AND ST_Area(b.geom::geography) > 300
        ORDER BY b.code LIMIT 1""", (grid,))[0]
    sql(city_db, """
        INSERT INTO complaint (source, external_id, category_code, description, address, reported_at, geom,
                               original_x, original_y, original_crs, match_level, placement, micro_grid_id,
                               micro_grid_code, grid_code, community_code, street_code, compound_code, building_code)
        SELECT 'patrol', 'FIELDTEST' || n, c.category_code, '楼道堆放杂物', c.address,
               now() - interval '2 days' + n * interval '1 hour', c.geom, c.original_x, c.original_y,
               c.original_crs, c.match_level, c.placement, c.micro_grid_id, c.micro_grid_code, c.grid_code,
               c.community_code, c.street_code, c.compound_code, c.building_code
        FROM (SELECT * FROM complaint WHERE micro_grid_code = %s AND geom IS NOT NULL ORDER BY id LIMIT 1) c
        CROSS JOIN generate_series(1, 4) n""", (micro,))
    tickets = [t for t, in sql(city_db, """SELECT t.id FROM ticket t JOIN complaint c ON c.id = t.complaint_id
                                           WHERE c.external_id LIKE 'FIELDTEST%%' ORDER BY t.id""")]
    with live_app.client() as http:
        admin = {"Authorization": "Bearer " + http.post("/auth/login", json={
            "username": "demo_admin", "password": PASSWORD}).json()["access_token"]}
        for ticket in tickets[:2]:
            state, = sql(city_db, "SELECT state FROM ticket WHERE id = %s", (ticket,))[0]
            steps = {"reported": ["register", "dispatch"], "registered": ["dispatch"]}.get(state, [])
            for action in steps + ["accept", "handle"]:
                body = {"action": action, "note": "已处理"}
                if action == "dispatch":
                    body["assignee"] = {"kind": "community", "code": grid[:12]}
                answer = http.post(f"/tickets/{ticket}/transitions", headers=admin, json=body)
                assert answer.status_code == 200, answer.text
    category, name = sql(city_db, "SELECT code, name_zh FROM category WHERE active ORDER BY code DESC LIMIT 1")[0]
    box = sql(city_db, "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM grid "
                       "WHERE code = %s AND valid_to IS NULL", (grid,))[0]
    return {"grid": grid, "building": building, "lon": lon, "lat": lat, "handled": tickets[:2],
            "open": tickets[2:], "category": category, "category_name": name, "box": box}


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


def big_photo() -> bytes:
    """A 2400×1200 camera-sized picture made here (the phone downscales it before upload)."""
    image = Image.new("RGB", (2400, 1200), (200, 60, 40))
    for x in range(0, 2400, 200):
        image.paste((40, 90, 200), (x, 0, x + 100, 1200))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def shot(page, size: str, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{size}-{name}.png"))


def small_targets(page, scope: str) -> list[str]:
    """Visible buttons, inputs and list lines under `scope` smaller than 44 px in height (check boxes apart)."""
    return page.evaluate("""(scope) => [...document.querySelectorAll(`${scope} button, ${scope} input, ${scope} select,
            ${scope} textarea, ${scope} .list li[data-ticket]`)]
        .filter((node) => node.offsetParent !== null && node.type !== 'checkbox' && node.type !== 'hidden')
        .filter((node) => { const r = node.getBoundingClientRect(); return r.width > 0 && r.height < 44; })
        .map((node) => `${node.tagName.toLowerCase()}#${node.id || node.className}`)""", scope)


def holder(url: str, ticket: int) -> str:
    """The ticket's holder as the worker should read it, from the tables: the organisation's kind and name."""
    kind, name = sql(url, """SELECT t.assignee_kind, coalesce(pc.name, cm.name) FROM ticket t
        LEFT JOIN property_company pc ON t.assignee_kind = 'property_company' AND pc.id::text = t.assignee_code
        LEFT JOIN community cm ON t.assignee_kind = 'community' AND cm.code = t.assignee_code AND cm.valid_to IS NULL
        WHERE t.id = %s""", (ticket,))[0]
    return f"{ {'property_company': '物业', 'community': '社区'}[kind]} · {name}"


def panel_top(page) -> float:
    return page.evaluate("() => document.querySelector('#panel').getBoundingClientRect().top")


@pytest.mark.parametrize("size", list(PHONES))
def test_grid_worker_on_the_phone(playwright, live_app, city, city_db, size, tmp_path):
    viewport = PHONES[size]
    phone = Phone(live_app.url, playwright, viewport, (city["lon"], city["lat"]))
    try:
        page = phone.new_page()
        phone.open_map(page)
        # the map fills the screen under the top bar; the sidebar is a collapsed sheet over it
        box = page.locator("#map").bounding_box()
        bar = page.locator("#topbar").bounding_box()
        assert box["width"] == viewport["width"] and box["y"] == bar["height"]
        assert box["y"] + box["height"] == viewport["height"]
        assert bar["height"] <= 56
        sheet = page.locator("#sidebar").bounding_box()
        assert sheet["height"] <= 100 and sheet["y"] + sheet["height"] == viewport["height"]
        assert small_targets(page, "#topbar") == []
        shot(page, size, "01-start")

        # signed out, the phone opens on the sign-in form (the account menu, open)
        assert page.locator("#login-user").is_visible() and page.locator("#login-button").is_visible()
        page.fill("#login-user", "demo_grid_worker")
        page.fill("#login-password", PASSWORD)
        shot(page, size, "02-sign-in")
        page.click("#login-button")
        wait_until(page, "document.body.dataset.ownArea !== undefined")
        settle(page)
        assert page.evaluate("() => document.body.dataset.ownArea") == city["grid"]
        west, south, east, north = page.evaluate("""() => { const b = window.gridgov.map.getBounds();
            return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; }""")
        minx, miny, maxx, maxy = city["box"]
        assert west <= minx and south <= miny and east >= maxx and north >= maxy, "the view misses the grid"
        assert page.evaluate("() => window.gridgov.map.getZoom()") >= 14, "the view is far wider than the grid"
        shot(page, size, "03-own-grid")

        # the list: 待办 holds the handled tickets (the worker checks them), 知悉 the others
        page.click("#sidebar-handle")
        page.locator("#my-tickets li[data-group-head=todo]").wait_for()
        todo = {int(x) for x in page.eval_on_selector_all("#my-tickets li[data-group=todo][data-ticket]",
                                                          "(nodes) => nodes.map((n) => n.dataset.ticket)")}
        info = {int(x) for x in page.eval_on_selector_all("#my-tickets li[data-group=info][data-ticket]",
                                                          "(nodes) => nodes.map((n) => n.dataset.ticket)")}
        assert set(city["handled"]) <= todo and set(city["open"]) <= info
        line = page.locator(f"#my-tickets li[data-ticket='{city['handled'][0]}']").inner_text()
        assert "期限" in line and "北京时间" in line and f"承办 {holder(city_db, city['handled'][0])}" in line
        assert "已处置" in line
        assert small_targets(page, "#sidebar") == []
        shot(page, size, "04-list")

        # open a ticket: details with its holder and history, the map still in sight with the ticket marked
        ticket = city["handled"][0]
        page.click(f"#my-tickets li[data-ticket='{ticket}']")
        page.locator(f"#ticket[data-ticket='{ticket}']").wait_for()
        settle(page)
        assert page.locator("#ticket-holder").inner_text() == holder(city_db, ticket)
        history = page.locator("#ticket .history").inner_text()
        assert "处置反馈" in history and "auto_dispatch" not in history
        assert "处理记录（北京时间）" in page.locator("#ticket").inner_text()
        height = page.locator("#panel").bounding_box()["height"]
        assert height <= 0.6 * viewport["height"] + 1
        pin = page.locator(f".ticket-pin[data-ticket='{ticket}']").bounding_box()
        assert pin and bar["height"] < pin["y"] + pin["height"] <= panel_top(page), "the ticket's pin is hidden"
        assert small_targets(page, "#panel") == []
        shot(page, size, "05-ticket")

        # a note without a state change
        version, = sql(city_db, "SELECT version FROM ticket WHERE id = %s", (ticket,))[0]
        page.fill("#note-text", f"现场查看：{size} 杂物已清理一半")
        page.click("#note-submit")
        wait_until(page, f"document.querySelector('#ticket .history') && document.querySelector('#ticket .history')"
                         f".innerText.includes('{size} 杂物已清理一半')")
        notes = sql(city_db, "SELECT action, from_state, to_state FROM ticket_event WHERE ticket_id = %s "
                             "AND note = %s", (ticket, f"现场查看：{size} 杂物已清理一半"))
        assert notes == [("comment", "handled", "handled")]
        shot(page, size, "06-note")

        # a photo without a state change, downscaled on the phone
        photo = tmp_path / "scene.png"
        photo.write_bytes(big_photo())
        page.set_input_files("#photo-input", str(photo))
        assert page.get_attribute("#photo-input", "capture") == "environment"
        page.click("#photo-submit")
        page.locator("#photo-gallery[data-count='1'] img[data-loaded='1']").wait_for()
        kind, content = sql(city_db, "SELECT content_type, content FROM ticket_photo WHERE ticket_id = %s",
                            (ticket,))[0]
        assert kind == "image/jpeg" and Image.open(io.BytesIO(content)).size == (1600, 800)
        assert sql(city_db, "SELECT state FROM ticket WHERE id = %s", (ticket,)) == [("handled",)]
        assert sql(city_db, "SELECT version FROM ticket WHERE id = %s", (ticket,)) == [(version,)]
        shot(page, size, "07-photo")

        # the photo full size
        page.click("#photo-gallery .thumb-button")
        page.locator("#photo-viewer:not([hidden])").wait_for()
        wait_until(page, "document.querySelector('#photo-viewer-img').naturalWidth === 1600")
        shot(page, size, "08-photo-full")
        page.click("#photo-viewer-close")
        page.locator("#photo-viewer").wait_for(state="hidden")

        # the panel scrolled to its end keeps its close button in sight at the top
        page.evaluate("() => { const p = document.querySelector('#panel'); p.scrollTop = p.scrollHeight; }")
        close = page.locator("#panel-close").bounding_box()
        assert panel_top(page) <= close["y"] <= panel_top(page) + 4 and close["height"] >= 44

        # report a new issue at the GPS position
        page.click("#panel-close")
        assert page.locator(".ticket-pin").count() == 0
        page.click("#field-report-open")
        page.locator("#field-report-form").wait_for()
        page.fill("#field-report-category-search", city["category_name"])
        wait_until(page, f"document.querySelector('#field-report-category').value === '{city['category']}'")
        page.fill("#field-report-text", f"{size} 单元门禁损坏")
        page.click("#field-report-use-gps")
        wait_until(page, "document.querySelector('#field-report-place').dataset.inScope === '1'")
        page.set_input_files("#field-report-photos", str(photo))
        shot(page, size, "09-report")
        page.click("#field-report-submit")
        wait_until(page, "document.querySelector('#field-report-result').dataset.done === '1'")
        new_ticket = int(page.get_attribute("#field-report-result", "data-ticket"))
        stored = sql(city_db, """
            SELECT c.source, c.reporter_name, c.grid_code, c.building_code, c.description, c.address,
                   abs(ST_X(c.geom) - %s) < 1e-6 AND abs(ST_Y(c.geom) - %s) < 1e-6,
                   (SELECT count(*) FROM ticket_photo p WHERE p.ticket_id = t.id)
            FROM complaint c JOIN ticket t ON t.complaint_id = c.id WHERE t.id = %s""",
                     (city["lon"], city["lat"], new_ticket))
        assert stored and stored[0][:5] == ("patrol", "demo_grid_worker", city["grid"], city["building"],
                                            f"{size} 单元门禁损坏")
        assert stored[0][5] and stored[0][5].endswith("号楼") and stored[0][6] is True and stored[0][7] == 1
        assert "上报成功" in page.locator("#field-report-result").inner_text()
        shot(page, size, "10-reported")

        # sign out, reachable from the top bar
        page.click("#account-toggle")
        logout = page.locator("#logout-button").bounding_box()
        assert logout and logout["x"] >= 0 and logout["x"] + logout["width"] <= viewport["width"]
        assert logout["y"] + logout["height"] <= viewport["height"] and logout["height"] >= 44
        shot(page, size, "11-account")
        page.click("#logout-button")
        page.locator("#account-toggle", has_text="登录").wait_for()
        shot(page, size, "12-signed-out")
        assert phone.foreign_requests() == [], phone.foreign_requests()[:5]
        assert phone.errors == [], phone.errors[:5]
    finally:
        phone.close()


def test_refused_location_is_said_in_chinese(playwright, live_app, city):
    phone = Phone(live_app.url, playwright, PHONES["390x844"], None)
    try:
        page = phone.new_page()
        phone.open_map(page)
        page.click("#account-toggle")  # a visitor folds the sign-in form away (收起) to use the map
        assert page.locator("#account-toggle").inner_text() == "登录" and not page.locator("#login-user").is_visible()
        page.click("#locate-me")
        wait_until(page, "document.querySelector('#status').textContent.includes('无法定位')")
        assert "拒绝了位置权限" in page.locator("#status").inner_text()
        shot(page, "390x844", "00-location-refused")
        assert phone.foreign_requests() == []
    finally:
        phone.close()


def test_server_errors_read_in_chinese(playwright, live_app, city):
    """A refusal whose reason the server wrote in English (an unknown ticket) is shown in Chinese."""
    phone = Phone(live_app.url, playwright, PHONES["390x844"], None)
    try:
        page = phone.new_page()
        phone.open_map(page)
        with live_app.client() as http:
            token = http.post("/auth/login", json={"username": "demo_grid_worker", "password": PASSWORD}
                              ).json()["access_token"]
        shown = page.evaluate("""async (token) => {
            const api = await import('/static/map/api.js');
            Object.assign(api.session, { token, role: 'grid_worker', username: 'demo_grid_worker' });
            const texts = [];
            for (const [path, options] of [['/tickets/999999999', {}],
                                           ['/tickets/999999999/comments', { method: 'POST', body: { note: 'x' } }],
                                           ['/tickets?state=nonsense', {}]]) {
                try { await api.api(path, options); } catch (error) { texts.push([error.status, error.message]); }
            }
            return texts;
        }""", token)
        assert [status for status, _ in shown] == [404, 404, 400]
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in text) and not any("a" <= ch <= "z" for ch in text)
                   for _, text in shown), shown
    finally:
        phone.close()


def test_report_at_a_tapped_place_on_the_phone(playwright, live_app, city, city_db):
    """No GPS needed: the worker taps the place on the map; the address is filled from the layers there."""
    phone = Phone(live_app.url, playwright, PHONES["360x640"], None)
    try:
        page = phone.new_page()
        phone.open_map(page)
        page.fill("#login-user", "demo_grid_worker")
        page.fill("#login-password", PASSWORD)
        page.click("#login-button")
        wait_until(page, "document.body.dataset.ownArea !== undefined")
        settle(page)
        page.click("#sidebar-handle")
        page.click("#field-report-open")
        page.locator("#field-report-form").wait_for()
        page.fill("#field-report-category-search", city["category_name"])
        page.fill("#field-report-text", "路面塌陷")
        page.click("#field-report-pick")
        page.evaluate("([lat, lon]) => { window.gridgov.map.setView([lat, lon], 18, {animate: false}); }",
                      [city["lat"], city["lon"]])
        settle(page)
        page.mouse.click(*map_pixel(page, city["lon"], city["lat"]))
        wait_until(page, "document.querySelector('#field-report-place').dataset.inScope === '1'")
        address = page.input_value("#field-report-address")
        assert address.endswith("号楼")
        page.click("#field-report-submit")
        wait_until(page, "document.querySelector('#field-report-result').dataset.done === '1'")
        ticket = int(page.get_attribute("#field-report-result", "data-ticket"))
        stored = sql(city_db, """SELECT c.address, c.building_code, c.source FROM complaint c
                                 JOIN ticket t ON t.complaint_id = c.id WHERE t.id = %s""", (ticket,))
        assert stored == [(address, city["building"], "patrol")]
        shot(page, "360x640", "13-reported-by-tap")
        assert phone.foreign_requests() == []
        assert phone.errors == [], phone.errors[:5]
    finally:
        phone.close()


def test_a_tablet_keeps_the_map_beside_an_opened_ticket(playwright, live_app, city):
    """At 800 px the sidebar stays, and the ticket's panel lies over the map instead of squeezing it."""
    tablet = Phone(live_app.url, playwright, {"width": 800, "height": 1100}, None)
    try:
        page = tablet.new_page()
        tablet.open_map(page)
        page.fill("#login-user", "demo_grid_worker")
        page.fill("#login-password", PASSWORD)
        page.click("#login-button")
        wait_until(page, "document.body.dataset.ownArea !== undefined")
        settle(page)
        width = page.locator("#map").bounding_box()["width"]
        page.click(f"#my-tickets li[data-ticket='{city['handled'][0]}']")
        page.locator(f"#ticket[data-ticket='{city['handled'][0]}']").wait_for()
        settle(page)
        assert page.locator("#map").bounding_box()["width"] == width > 450
        assert page.locator("#sidebar").bounding_box()["width"] == 270
        pin = page.locator(f".ticket-pin[data-ticket='{city['handled'][0]}']").bounding_box()
        assert pin and 270 < pin["x"] and pin["x"] + pin["width"] <= page.locator("#panel").bounding_box()["x"]
        shot(page, "800x1100", "tablet-ticket")
        assert tablet.foreign_requests() == []
        assert tablet.errors == [], tablet.errors[:5]
    finally:
        tablet.close()
