"""The field app offline (issue 16), in Debian's Chromium at phone sizes against the running app.

A grid worker signs in online and the service worker keeps the app shell, the map's reads and the worker's
tickets. With the browser offline the worker opens a ticket from the kept list and adds a note and a photo through
the field screens, closes that ticket (核查结案), reports a new issue, and closes a second ticket that a street
officer sends back meanwhile (through the API, as another user); the last three go through the outbox's façade.
The page is reloaded while offline: it comes back from the service worker with its queue. Back online the queue
is sent in order; the server then holds the note, the photo, the closing and the report exactly once each, and
the second ticket shows the conflict screen (both sides, Beijing time) until the worker decides. Signing out
forgets the kept personal answers. Screenshots of each step go to test-artifacts/field-offline/; no request
leaves the app's own origin.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import time
import uuid
import zlib

import psycopg
import pytest

from gis.db.engine import libpq_url
from tests.browser.harness import ARTIFACTS, Browser, settle, wait_until
from tests.conftest import LiveServer
from tests.users import Account, create_users
from webmap import STATIC_DIR

PASSWORD = "field-offline-password-1"
SHOTS = ARTIFACTS / "field-offline"
NOTE = "楼道灯已修好，居民确认（离线备注）"
REPORT_TEXT = "3号楼地下室积水（离线上报）"
OFFLINE_NOISE = ("ERR_INTERNET_DISCONNECTED", "Failed to load resource", "Failed to fetch")


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def png_bytes() -> bytes:
    """A tiny valid PNG, the worker's 'photo'."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + b"\xc6\x28\x28" * 8 for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def field(fresh_city_db):
    """A grid with a grid worker and two open tickets put at 已处置 (handled, for the worker to verify), the
    worker, a street officer of the same street, and the app serving this database alone."""
    url = fresh_city_db
    grid, street = sql(url, """
        SELECT c.grid_code, c.street_code FROM ticket t JOIN complaint c ON c.id = t.complaint_id
        WHERE EXISTS (SELECT 1 FROM grid_worker w WHERE w.grid_code = c.grid_code)
        GROUP BY 1, 2 ORDER BY count(*) DESC, 1 LIMIT 1""")[0]
    tickets = [row[0] for row in sql(url, """
        SELECT t.id FROM ticket t JOIN complaint c ON c.id = t.complaint_id
        WHERE c.grid_code = %s AND t.state <> 'closed' AND NOT EXISTS (
            SELECT 1 FROM ticket_event e WHERE e.ticket_id = t.id AND e.action IN ('verify', 'comment', 'photo'))
        ORDER BY t.id DESC LIMIT 2""", (grid,))]
    assert len(tickets) == 2
    sql(url, "UPDATE ticket SET state = 'handled', handled_at = now(), closed_at = NULL, merged_into_id = NULL "
             "WHERE id = ANY(%s)", (tickets,))
    lon, lat = sql(url, """SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM micro_grid
                           WHERE grid_code = %s AND valid_to IS NULL ORDER BY code LIMIT 1""", (grid,))[0]
    category, = sql(url, "SELECT category_code FROM complaint WHERE grid_code = %s GROUP BY 1 "
                         "ORDER BY count(*) DESC, 1 LIMIT 1", (grid,))[0]

    create_users(url, PASSWORD, [Account("field-worker", "grid_worker", [grid], display_name="离线网格员"),
                                 Account("field-street", "street", [street], display_name="街道值班员")])
    server = LiveServer(url)
    yield {"url": url, "app": server, "grid": grid, "tickets": tickets, "lon": lon, "lat": lat,
           "category": category}
    server.stop()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def sign_in(page, username: str) -> None:
    toggle = page.locator("#account-toggle")
    if toggle.count() and toggle.is_visible() and not page.locator("#login-user").is_visible():
        toggle.click()  # at phone widths the account form opens from the top bar
    page.fill("#login-user", username)
    page.fill("#login-password", PASSWORD)
    page.click("#login-button")
    wait_until(page, "sessionStorage.getItem('gridgov.token')")


def events(url: str, ticket: int, action: str) -> list[tuple]:
    return sql(url, "SELECT note, actor FROM ticket_event WHERE ticket_id = %s AND action = %s", (ticket, action))


SUBMIT_JS = """async ([requests, photo]) => {
    const bytes = Uint8Array.from(atob(photo), (c) => c.charCodeAt(0));
    const answers = [];
    for (const request of requests) {
        if (request.files) request.files = [{field: 'file', blob: new Blob([bytes], {type: 'image/png'}),
                                              filename: 'stairwell.png'}];
        answers.push(await window.gridgov.outbox.submit(request));
    }
    return answers;
}"""


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 360, "height": 640}],
                         ids=["390x844", "360x640"])
def test_work_done_offline_is_queued_kept_over_a_reload_and_sent_once(field, viewport):
    url, app = field["url"], field["app"]
    first, moved = field["tickets"]
    size = f"{viewport['width']}x{viewport['height']}"
    browser = Browser(app.url)
    try:
        page = browser.new_page()
        page.set_viewport_size(viewport)
        browser.open_map(page)
        sign_in(page, "field-worker")
        # the service worker controls the page, re-read the start through it, and kept the worker's tickets
        wait_until(page, "window.gridgov.offline.controlled && window.gridgov.offline.prefetchDone", 60_000)
        assert page.evaluate("window.gridgov.offline.prefetched") >= 2
        settle(page)
        shot(page, f"{size}-1-online-signed-in")

        versions = dict(sql(url, "SELECT id, version FROM ticket WHERE id = ANY(%s)", ([first, moved],)))
        browser.context.set_offline(True)
        wait_until(page, "!navigator.onLine")
        wait_until(page, "document.querySelector('#offline-banner')"
                         " && !document.querySelector('#offline-banner').hidden")

        # meanwhile a street officer sends the second ticket back, through the API
        with app.client() as street:
            token = street.post("/auth/login", json={"username": "field-street", "password": PASSWORD}).json()
            answer = street.post(f"/tickets/{moved}/transitions", headers={
                "Authorization": f"Bearer {token['access_token']}"}, json={
                "action": "send_back", "note": "现场复核未完成，退回重办", "version": versions[moved]})
            assert answer.status_code == 200, answer.text

        # offline, through the worker's own screens: the ticket opens from the kept list, a note and a photo
        page.evaluate(f"document.querySelector('#my-tickets li[data-ticket=\"{first}\"]').click()")
        wait_until(page, "document.querySelector('#note-text') && document.querySelector('#photo-input')")
        page.evaluate("([note]) => { document.querySelector('#note-text').value = note; "
                      "document.querySelector('#note-submit').click(); }", [NOTE])
        wait_until(page, "document.querySelector('#note-result').dataset.done === '1'")
        assert page.inner_text("#note-result") == "已保存到待发送队列，联网后自动发送"
        page.set_input_files("#photo-input", files=[{"name": "stairwell.png", "mimeType": "image/png",
                                                     "buffer": png_bytes()}])
        page.evaluate("document.querySelector('#photo-submit').click()")
        wait_until(page, "document.querySelector('#photo-result').dataset.done === '1'")
        shot(page, f"{size}-2-offline-note-and-photo")

        client_id = str(uuid.uuid4())
        requests = [
            {"kind": "transition", "path": f"/tickets/{first}/transitions",
             "body": {"action": "verify", "note": "核查无误，结案"}, "ticketId": first, "version": versions[first],
             "label": f"核查结案 工单 #{first}"},
            {"kind": "report", "path": "/field/reports", "label": "上报新问题",
             "body": {"client_id": client_id, "category_code": field["category"], "lon": field["lon"],
                      "lat": field["lat"], "description": REPORT_TEXT}},
            {"kind": "transition", "path": f"/tickets/{moved}/transitions",
             "body": {"action": "verify", "note": "离线核查"}, "ticketId": moved, "version": versions[moved],
             "label": f"核查结案 工单 #{moved}"},
        ]
        answers = page.evaluate(SUBMIT_JS, [requests, base64.b64encode(png_bytes()).decode()])
        assert answers == [{"queued": True}] * 3
        wait_until(page, "document.querySelector('#offline-banner-text').textContent === '离线：5 项待发送'")
        shot(page, f"{size}-3-offline-queued")
        assert events(url, first, "comment") == [] and events(url, first, "verify") == []

        # reloaded without a network: the page comes from the service worker, the queue from IndexedDB
        page.reload()
        wait_until(page, "window.gridgov && window.gridgov.ready === true", 60_000)
        wait_until(page, "document.querySelector('#offline-banner-text') && "
                         "document.querySelector('#offline-banner-text').textContent === '离线：5 项待发送'")
        assert page.evaluate("document.body.dataset.ready") == "1"
        kept = page.evaluate("async () => (await window.gridgov.outbox.records()).map((r) => [r.kind, r.state])")
        assert kept == [["note", "waiting"], ["photo", "waiting"], ["transition", "waiting"],
                        ["report", "waiting"], ["transition", "waiting"]]
        shot(page, f"{size}-4-offline-reloaded")

        # back online: sent in order; the moved ticket waits as a conflict on its screen
        browser.context.set_offline(False)
        wait_until(page, "document.querySelector('#conflict-screen')", 60_000)
        wait_until(page, "document.querySelector('#offline-banner-text').textContent === '1 项冲突待处理'")
        screen = page.locator("#conflict-screen")
        text = screen.inner_text()
        assert f"工单 #{moved} 已被他人更新" in text
        assert f"核查结案 工单 #{moved}" in text and "离线核查" in text  # what the worker did offline
        assert "处置中" in text and "field-street" in text and "退回重办" in text  # the ticket now, who moved it
        assert text.count("北京时间") >= 2
        assert f"基于版本：{versions[moved]}" in text and f"版本 {versions[moved] + 1}" in text
        for button in ("#conflict-discard", "#conflict-apply"):
            box = page.locator(button).bounding_box()
            assert box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
            assert box["y"] + box["height"] <= viewport["height"]
        shot(page, f"{size}-5-conflict")

        # the server holds exactly what was made, once each; the moved ticket is not overwritten
        assert events(url, first, "comment") == [(NOTE, "field-worker")]
        # the photo as the phone made it: downscaled to a JPEG by the photo form
        assert sql(url, "SELECT count(*), min(content_type) FROM ticket_photo WHERE ticket_id = %s",
                   (first,)) == [(1, "image/jpeg")]
        assert len(events(url, first, "verify")) == 1
        assert sql(url, "SELECT state FROM ticket WHERE id = %s", (first,)) == [("closed",)]
        assert sql(url, "SELECT count(*), min(description) FROM complaint WHERE source = 'patrol' "
                        "AND external_id = %s", (client_id,)) == [(1, REPORT_TEXT)]
        assert events(url, moved, "verify") == []
        assert sql(url, "SELECT state FROM ticket WHERE id = %s", (moved,)) == [("in_progress",)]

        page.click("#conflict-discard")
        wait_until(page, "!document.querySelector('#conflict-screen')")
        wait_until(page, "document.querySelector('#offline-banner').hidden")
        assert page.evaluate("async () => (await window.gridgov.outbox.records()).length") == 0
        shot(page, f"{size}-6-sent")
        # sending again sends nothing twice
        page.evaluate("() => window.gridgov.outbox.flush()")
        assert len(events(url, first, "comment")) == 1 and len(events(url, first, "verify")) == 1
        assert events(url, moved, "verify") == []

        # signing out forgets the answers kept for the worker (tickets, profile); the app shell stays
        assert page.evaluate("caches.has('gridgov-personal')")
        page.evaluate("document.querySelector('#logout-button').click()")
        wait_until(page, "!sessionStorage.getItem('gridgov.token')")
        deadline = time.monotonic() + 20
        while page.evaluate("caches.has('gridgov-personal')") and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        assert not page.evaluate("caches.has('gridgov-personal')")
        assert page.evaluate("caches.keys().then((names) => names.some((n) => n.startsWith('workbox-precache')))")

        assert browser.foreign_requests() == []
        errors = [error for error in browser.errors if not any(noise in error for noise in OFFLINE_NOISE)]
        assert errors == [], errors[:5]
    finally:
        browser.close()


def test_the_service_worker_precaches_every_file_of_the_shell_and_the_manifest_is_served(city_db):
    """/sw.js carries the shell's file list with a revision each, every listed file answers 200 (one missing file
    would fail the worker's install), and the manifest names the app in Chinese with icons the app serves."""
    server = LiveServer(city_db)
    try:
        with server.client() as http:
            worker = http.get("/sw.js")
            assert worker.status_code == 200 and worker.headers["content-type"].startswith("text/javascript")
            assert worker.headers["cache-control"] == "no-cache"
            assert "__WB_MANIFEST" not in worker.text
            listed = json.loads(re.search(r"precacheAndRoute\((\[.*?\]), \{", worker.text).group(1))
            urls = {entry["url"] for entry in listed}
            modules = {f"/static/{path.relative_to(STATIC_DIR).as_posix()}"
                       for path in (STATIC_DIR / "map").rglob("*.js")}
            assert modules <= urls
            assert {"/map", "/static/map.css", "/static/offline.css", "/static/vendor/leaflet/leaflet.js",
                    "/static/vendor/leaflet/leaflet.css", "/manifest.webmanifest"} <= urls
            assert all(len(entry["revision"]) == 16 for entry in listed)
            for url in sorted(urls):
                assert http.get(url).status_code == 200, url
            for name in ("workbox-sw.js", "workbox-core.prod.js", "workbox-routing.prod.js",
                         "workbox-strategies.prod.js", "workbox-precaching.prod.js", "workbox-expiration.prod.js",
                         "workbox-cacheable-response.prod.js"):
                assert http.get(f"/static/vendor/workbox/{name}").status_code == 200, name
            manifest = http.get("/manifest.webmanifest")
            assert manifest.headers["content-type"].startswith("application/manifest+json")
            body = manifest.json()
            assert body["name"] == "gridgov 网格治理" and body["start_url"] == "/map" and body["scope"] == "/"
            sizes = {icon["sizes"] for icon in body["icons"]}
            assert {"192x192", "512x512"} <= sizes
            for icon in body["icons"]:
                answer = http.get(icon["src"])
                assert answer.status_code == 200 and answer.content.startswith(b"\x89PNG")
            assert 'rel="manifest" href="/manifest.webmanifest"' in http.get("/map").text
    finally:
        server.stop()


def test_a_phone_pans_sideways_without_fetching_the_boundaries_again(field):
    """On a 390 px wide phone the boundaries are fetched with a margin of at least 300 px on each side (30 % of
    the width would be 117 px, so every sideways step refetched them): a 150 px pan reuses what was fetched, a
    pan past the margin fetches again."""
    browser = Browser(field["app"].url)
    try:
        page = browser.new_page()
        fetched: list[str] = []  # the page's own requests: the context also sees the service worker's network ones
        page.on("request", lambda request: fetched.append(request.url))
        page.set_viewport_size({"width": 390, "height": 844})
        browser.open_map(page, f"#v=16/{field['lat']:.5f}/{field['lon']:.5f}&l=street,community,grid,compound")
        # on a first visit the page reads its start again through the service worker once it takes over (the
        # offline warm-up); on a busy machine that came after the pans below and was counted as their fetches
        wait_until(page, "window.gridgov.offline.controlled", 60_000)
        settle(page)

        def boundary_fetches() -> int:
            return sum(1 for url in fetched if "/layers/grid.geojson" in url or "/layers/compound.geojson" in url)

        def pan(dx: int) -> None:
            page.evaluate("async (dx) => { const drawn = window.gridgov.nextDraw();"
                          " window.gridgov.map.panBy([dx, 0], {animate: false}); await drawn; }", dx)
            settle(page)

        before = boundary_fetches()
        assert before >= 2
        pan(150)
        pan(-150)
        assert boundary_fetches() == before
        pan(450)
        assert boundary_fetches() == before + 2
        assert browser.foreign_requests() == []
    finally:
        browser.close()
