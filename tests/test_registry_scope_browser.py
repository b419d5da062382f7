"""The registry's edit forms on the map show where this deployment serves their routes, and only on the caller's own
compounds, in Debian's Chromium against the running app on the small city: a street office opens any compound of
its street and sees every form; a community sees the edit entry on its own compounds only, not on a neighbouring
community's; /map/config.json lists the routes the forms use."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from gis.db.engine import libpq_url
from tests.browser.harness import Browser, checked_page, map_pixel, screenshot, settle, sign_in
from tests.conftest import LiveServer
from tests.users import create_users

PASSWORD = "registry-scope-pw-1"
FORMS = ("#registry-mode", "#registry-takeover", "#registry-term", "#registry-join", "#registry-secretary",
         "#registry-dissolve")
ROUTES = ("GET /registry/compounds/{compound_code}/parties", "POST /registry/compounds/{compound_code}/management",
          "POST /registry/compounds/{compound_code}/takeover",
          "POST /registry/compounds/{compound_code}/committee-terms", "POST /registry/grid-workers/joins",
          "POST /registry/grid-workers/{worker_id}/leave",
          "POST /registry/party-organisations/{organisation_code}/secretary",
          "POST /registry/party-organisations/{organisation_code}/dissolve", "GET /registry/company",
          "POST /registry/company/proposals", "GET /registry/proposals")
SCREENS = Path(__file__).resolve().parent.parent / "docs" / "screens"


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def city(city_db) -> dict:
    # two compounds of two communities of one street, each at a point of its own with no complaint near it, and
    # with a grid worker and a party organisation around it, so every form is offered
    rows = sql(city_db, """
        SELECT DISTINCT ON (c.community_code) cm.street_code, c.community_code, c.code, ST_X(p.pt), ST_Y(p.pt)
        FROM compound c
        JOIN community cm ON cm.code = c.community_code AND cm.valid_to IS NULL
        CROSS JOIN LATERAL (SELECT ST_PointOnSurface(c.geom) AS pt) p
        WHERE c.valid_to IS NULL
          AND NOT EXISTS (SELECT 1 FROM complaint k WHERE ST_DWithin(k.geom::geography, p.pt::geography, 80))
          AND EXISTS (SELECT 1 FROM grid_worker w JOIN grid g ON g.code = w.grid_code
                      WHERE g.community_code = c.community_code)
        ORDER BY c.community_code, c.code""")
    street = rows[0][0]
    own, other = [r for r in rows if r[0] == street][:2]

    create_users(city_db, PASSWORD, [("scope-street", "street", [street]), ("scope-community", "community", [own[1]])])
    return {"url": city_db, "own": {"code": own[2], "lon": own[3], "lat": own[4]},
            "other": {"code": other[2], "lon": other[3], "lat": other[4]}}


@pytest.fixture(scope="module")
def server(city):
    app = LiveServer(city["url"])
    yield app
    app.stop()


@pytest.fixture(scope="module")
def browser(server):
    driver = Browser(server.url)
    yield driver
    driver.close()


def ask_at(page, place: dict) -> None:
    page.evaluate("([lat, lon]) => { window.gridgov.map.setView([lat, lon], 18, { animate: false }); }",
                  [place["lat"], place["lon"]])
    settle(page)
    page.mouse.click(*map_pixel(page, place["lon"], place["lat"]))
    page.wait_for_selector(f"#responsibility [data-compound='{place['code']}'], #responsibility dl")
    page.wait_for_function("(code) => document.querySelector('#responsibility').innerText.includes('小区')",
                           arg=place["code"])


def test_the_page_is_told_the_registry_routes(server):
    with server.client() as http:
        routes = http.get("/map/config.json").json()["routes"]
    assert [route for route in ROUTES if route not in routes] == []


def test_a_street_office_sees_the_registry_forms(browser, city):
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "scope-street", PASSWORD)
        for place in (city["own"], city["other"]):  # both communities lie in the street
            ask_at(page, place)
            page.wait_for_selector(f"#responsibility .registry-edit[data-compound='{place['code']}']")
        page.click("#responsibility .registry-edit")
        for selector in FORMS:
            page.wait_for_selector(selector)
        assert page.is_visible("#registry-proposals")
        shots = []
        for name, size in (("desktop", (1280, 800)), ("phone", (390, 844))):
            page.set_viewport_size({"width": size[0], "height": size[1]})
            page.evaluate("() => window.gridgov.map.invalidateSize()")
            settle(page)
            if name == "phone":  # the panel closed, the sidebar's sheet opened full on the work tab's forms
                page.click("#panel-close")
                for _ in range(2):
                    page.click("#sidebar-handle")
                page.wait_for_function("() => document.querySelector('#sidebar').dataset.sheet === 'full'")
            page.locator("#registry-mode").scroll_into_view_if_needed()
            shots.append(screenshot(page, f"registry-forms-street-{name}"))
        shot, phone = shots
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENS / "registry-forms-street-desktop.png")
    shutil.copy(phone, SCREENS / "registry-forms-street-phone.png")


def test_a_community_edits_only_its_own_compounds(browser, city):
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "scope-community", PASSWORD)
        ask_at(page, city["other"])
        assert page.locator("#responsibility .registry-edit").count() == 0
        ask_at(page, city["own"])
        page.wait_for_selector(f"#responsibility .registry-edit[data-compound='{city['own']['code']}']")
        page.click("#responsibility .registry-edit")
        page.wait_for_selector("#registry-mode")
        assert f"小区登记信息维护 {city['own']['code']}" in page.inner_text("#registry-compound")
        assert not page.is_visible("#registry-proposals")  # a community reviews no company's proposals
