"""Editing the registry from the map's work tab, driven in Debian's Chromium against the running app on the small
city: a street office opens a compound from the responsibility panel, changes its management mode through the
form and sees the new mode in the panel; a refused form shows the server's Chinese reason; a property company's
proposal of its own basic information shows as pending and changes nothing until the street approves it."""

from __future__ import annotations

import psycopg
import pytest

from gis.db.engine import libpq_url
from tests.browser.harness import Browser, checked_page, map_pixel, settle, sign_in, wait_until
from tests.conftest import LiveServer
from tests.users import create_users

PASSWORD = "registry-edit-pw-1"
MODE_NAMES = {"professional": "专业化物业", "entrusted": "社区代管"}


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def city(city_db) -> dict:
    # a professionally managed compound, at a point of its own with no complaint near it (a click there asks who is
    # responsible, it does not open a complaint)
    street, compound, company, lon, lat = sql(city_db, """
        SELECT cm.street_code, c.code, c.property_company_id, ST_X(p.pt), ST_Y(p.pt)
        FROM compound c
        JOIN community cm ON cm.code = c.community_code AND cm.valid_to IS NULL
        CROSS JOIN LATERAL (SELECT ST_PointOnSurface(c.geom) AS pt) p
        WHERE c.valid_to IS NULL AND c.management_mode = 'professional' AND c.property_company_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM complaint k WHERE ST_DWithin(k.geom::geography, p.pt::geography, 80))
        ORDER BY cm.street_code, c.code LIMIT 1""")[0]

    create_users(city_db, PASSWORD, [
        ("edit-street", "street", [street]),
        ("edit-company", "property_company", [], company),
    ])
    return {"street": street, "compound": compound, "company": company, "lon": lon, "lat": lat, "url": city_db}


@pytest.fixture(scope="module")
def browser(city):
    server = LiveServer(city["url"])
    driver = Browser(server.url)
    yield driver
    driver.close()
    server.stop()


def open_compound(page, city) -> None:
    page.evaluate("([lat, lon]) => { window.gridgov.map.setView([lat, lon], 18, { animate: false }); }",
                  [city["lat"], city["lon"]])
    settle(page)
    page.mouse.click(*map_pixel(page, city["lon"], city["lat"]))
    page.wait_for_selector(f"#responsibility .registry-edit[data-compound='{city['compound']}']")
    assert MODE_NAMES["professional"] in page.inner_text("#responsibility")
    page.click("#responsibility .registry-edit")
    page.wait_for_selector("#registry-mode")


def test_a_street_changes_a_compounds_mode_and_sees_it_in_the_panel(browser, city):
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "edit-street", PASSWORD)
        open_compound(page, city)
        today = page.evaluate("() => new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' })"
                              ".format(new Date())")
        assert page.input_value("#registry-mode [name=on_date]") == today  # a Beijing date by default
        # refused: a date after today, with the server's Chinese reason
        page.select_option("#registry-mode [name=management_mode]", "entrusted")
        page.fill("#registry-mode [name=on_date]", "2099-01-01")
        page.fill("#registry-mode [name=reason]", "原物业撤场，社区代管")
        page.click("#registry-mode button[type=submit]")
        page.wait_for_selector("#registry-mode [data-result=refused]")
        assert "晚于今天" in page.inner_text("#registry-mode [data-result]")
        # the browser logs the refused request (400) it was meant to get; nothing else may be logged
        assert [e for e in browser.errors if "400" not in e] == []
        browser.errors.clear()
        assert sql(city["url"], "SELECT management_mode FROM compound WHERE code = %s AND valid_to IS NULL",
                   (city["compound"],)) == [("professional",)]
        page.fill("#registry-mode [name=on_date]", today)
        page.click("#registry-mode button[type=submit]")
        page.wait_for_selector("#registry-result")
        wait_until(page, f"document.querySelector('#responsibility') && document.querySelector('#responsibility')"
                         f".innerText.includes('{MODE_NAMES['entrusted']}')")
    assert sql(city["url"], "SELECT management_mode FROM compound WHERE code = %s AND valid_to IS NULL",
               (city["compound"],)) == [("entrusted",)]
    change = sql(city["url"], "SELECT username, reason FROM audit_change WHERE subject = 'compound_management' "
                              "AND record_key = %s ORDER BY id DESC LIMIT 1", (city["compound"],))
    assert change == [("edit-street", "原物业撤场，社区代管")]


def test_a_companys_proposal_shows_pending_until_the_street_approves_it(browser, city):
    before = sql(city["url"], "SELECT contact_name FROM property_company WHERE id = %s", (city["company"],))
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "edit-company", PASSWORD)
        page.wait_for_selector("#registry-propose")
        assert not page.is_visible("#registry-compound") and not page.is_visible("#registry-proposals")
        page.fill("#registry-propose [name=contact_name]", "卫经理")
        page.click("#registry-propose button[type=submit]")
        page.wait_for_selector("#registry-proposal-state[data-state=pending]")
        assert "待审核" in page.inner_text("#registry-proposal-state")
        assert "联系人" in page.inner_text("#registry-proposal-state")
    assert sql(city["url"], "SELECT contact_name FROM property_company WHERE id = %s", (city["company"],)) == before
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "edit-street", PASSWORD)
        item = "#registry-proposals li[data-proposal]"
        page.wait_for_selector(item)
        assert "卫经理" in page.inner_text(item)
        page.click(f"{item} button.approve")
        page.wait_for_selector("#registry-proposals li.muted")
    assert sql(city["url"], "SELECT contact_name FROM property_company WHERE id = %s",
               (city["company"],)) == [("卫经理",)]
