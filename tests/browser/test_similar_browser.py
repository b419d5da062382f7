"""Likely duplicates on the grid worker's phone (issue 19, item 2), in Debian's Chromium at 390×844 against the
running app on the small city: the worker opens the report form near an open ticket of the same problem, types,
sees it suggested with its score (相似度 xx%), joins it (加入此工单), and the ticket's history shows the report as
居民附议/重复反映; the report is stored once. Screenshot: docs/screens/similar-phone.png."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from fixtures.duplicate_set import INSERT_SQL
from gis.db.engine import libpq_url
from tests.browser.harness import ARTIFACTS, settle, wait_until
from tests.test_field_browser import PHONES, Phone

PASSWORD = "similar-browser-pw-1"
SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def scene(city_db) -> dict:
    """The demo grid worker, a building of their grid and an open leak ticket there reported yesterday."""
    from gis.access.auth import hash_password

    sql(city_db, "UPDATE app_user SET password_hash = %s WHERE username = 'demo_grid_worker'",
        (hash_password(PASSWORD),))
    grid, = sql(city_db, "SELECT scope_codes[1] FROM app_user WHERE username = 'demo_grid_worker'")[0]
    building, lon, lat = sql(city_db, """
        SELECT b.code, ST_X(ST_PointOnSurface(b.geom)), ST_Y(ST_PointOnSurface(b.geom)) FROM building b
        JOIN micro_grid m ON m.code = b.micro_grid_code AND m.valid_to IS NULL
        WHERE b.valid_to IS NULL AND m.grid_code = %s AND b.compound_code IS NOT NULL
          AND ST_Area(b.geom::geography) > 300 ORDER BY b.code LIMIT 1""", (grid,))[0]
    key = f"similar-browser:{uuid.uuid4()}"
    sql(city_db, INSERT_SQL, {"source": "hotline", "keys": [key], "buildings": [building], "categories": ["E0601"],
                              "descriptions": ["楼上卫生间往下渗水，天花板泡了"], "addresses": ["测试地址"],
                              "reported": [sql(city_db, "SELECT now() - interval '1 day'")[0][0]]})
    ticket, = sql(city_db, "SELECT t.id FROM ticket t JOIN complaint c ON c.id = t.complaint_id "
                           "WHERE c.external_id = %s", (key,))[0]
    name, = sql(city_db, "SELECT name_zh FROM category WHERE code = 'E0601'")[0]
    return {"grid": grid, "lon": lon, "lat": lat, "ticket": ticket, "category_name": name}


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


def test_typing_a_report_near_a_ticket_suggests_it_and_joining_lands_in_its_history(playwright, live_app, scene,
                                                                                    city_db):
    phone = Phone(live_app.url, playwright, PHONES["390x844"], (scene["lon"], scene["lat"]))
    ticket = scene["ticket"]
    try:
        page = phone.new_page()
        phone.open_map(page)
        page.fill("#login-user", "demo_grid_worker")
        page.fill("#login-password", PASSWORD)
        page.click("#login-button")
        wait_until(page, "document.body.dataset.ownArea !== undefined")
        settle(page)
        page.click("#field-report-open")
        page.locator("#field-report-form").wait_for()
        page.fill("#field-report-category-search", scene["category_name"])
        wait_until(page, "document.querySelector('#field-report-category').value === 'E0601'")
        page.click("#field-report-use-gps")
        wait_until(page, "document.querySelector('#field-report-place').dataset.inScope === '1'")
        page.fill("#field-report-text", "卫生间往下渗水，楼下天花板湿了")
        item = page.locator(f"#field-similar li[data-ticket='{ticket}']")
        item.wait_for()
        line = item.inner_text()
        assert "相似度" in line and "%" in line and scene["category_name"] in line, line
        score = float(item.get_attribute("data-score"))
        assert f"相似度 {round(100 * score)}%" in line
        join = item.locator("button.similar-join")
        assert join.inner_text() == "加入此工单"
        box = join.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] >= 44
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
        item.scroll_into_view_if_needed()
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / "similar-phone.png"))

        join.click()
        wait_until(page, "document.querySelector('#field-report-result').dataset.done === '1'")
        assert page.get_attribute("#field-report-result", "data-joined") == str(ticket)
        assert f"已加入工单 #{ticket}" in page.locator("#field-report-result").inner_text()
        stored = sql(city_db, """
            SELECT t.state, t.merged_into_id FROM complaint c JOIN ticket t ON t.complaint_id = c.id
            WHERE c.source = 'patrol' AND c.description = '卫生间往下渗水，楼下天花板湿了'""")
        assert stored == [("merged", ticket)], stored

        # the joined ticket's history, opened from the worker's list
        page.click("#panel-close")
        page.click("#sidebar-handle")
        page.locator(f"#my-tickets li[data-ticket='{ticket}']").click()
        page.locator(f"#ticket[data-ticket='{ticket}']").wait_for()
        history = page.locator("#ticket ol.history").inner_text()
        assert "居民附议/重复反映" in history and "并入重复工单" in history, history
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "similar-phone-history.png"))
        assert phone.foreign_requests() == [], phone.foreign_requests()[:5]
        assert phone.errors == [], phone.errors[:5]
    finally:
        phone.close()
