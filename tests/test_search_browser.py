"""The map's search box by keyboard only, in Debian's Chromium against the running app on the small city: a full
address and a phase written `二期` are found, chosen with the arrow keys and Enter, and the map frames what was
found (a building with the building layer switched on, a community as its whole area). Escape closes the list.

The small city has no phased estates, so two neighbouring compounds become 机械厂宿舍2期 and 机械厂宿舍3期
before the app answers its first search.
"""

from __future__ import annotations

import psycopg
import pytest

from gis.db.engine import libpq_url
from tests.browser.harness import Browser, checked_page, settle, wait_until

FIRST_HIT = "document.querySelector('#search-results li[data-index=\"0\"]')"


def sql(url: str, query: str, params=()) -> list[tuple]:
    """Rows of one statement, committed."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def estate(city_db) -> dict:
    """Two compounds of one community renamed to the phases 2期 and 3期 of one estate, with their facts."""
    first, second = sql(city_db, """
        SELECT a.code, b.code FROM compound a JOIN compound b ON b.community_code = a.community_code
            AND b.code > a.code AND b.valid_to IS NULL
        WHERE a.valid_to IS NULL AND EXISTS (SELECT 1 FROM building x WHERE x.compound_code = a.code)
        ORDER BY a.code, b.code LIMIT 1""")[0]
    sql(city_db, "UPDATE compound SET name = '机械厂宿舍2期', aliases = '{}' WHERE code = %s", (first,))
    sql(city_db, "UPDATE compound SET name = '机械厂宿舍3期', aliases = '{}' WHERE code = %s", (second,))
    district, street, community, community_code = sql(city_db, """
        SELECT d.name, s.name, m.name, m.code FROM compound c
        JOIN community m ON m.code = c.community_code AND m.valid_to IS NULL
        JOIN street s ON s.code = m.street_code AND s.valid_to IS NULL
        JOIN district d ON d.code = s.district_code AND d.valid_to IS NULL
        WHERE c.code = %s AND c.valid_to IS NULL""", (first,))[0]
    building, number = sql(city_db, "SELECT code, number FROM building WHERE compound_code = %s AND valid_to IS NULL"
                                    " ORDER BY number LIMIT 1", (first,))[0]
    return {"first": first, "second": second, "building": building, "number": number, "community": community,
            "community_code": community_code,
            "address": f"{district}{street}{community}机械厂宿舍2期{number}号楼"}


def bbox_of(url: str, table: str, code: str) -> list[float]:
    """[minx, miny, maxx, maxy] of a current row."""
    return list(sql(url, f"SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM {table}"
                         " WHERE code = %s AND valid_to IS NULL", (code,))[0])


@pytest.fixture(scope="module")
def browser(live_app, estate):
    driver = Browser(live_app.url)
    yield driver
    driver.close()


@pytest.fixture
def page(browser):
    with checked_page(browser) as page:
        browser.open_map(page)
        yield page


def type_query(page, text: str, first_code: str) -> None:
    """Into the search box by keyboard, until the list's first row is `first_code`."""
    page.locator("#search").focus()
    page.keyboard.press("Control+A")
    page.keyboard.press("Backspace")
    page.keyboard.type(text)
    wait_until(page, f"{FIRST_HIT} && {FIRST_HIT}.dataset.code === '{first_code}'"
                     " && !document.querySelector('#search-results').hidden")


def framed(page, bbox: list[float]) -> dict:
    """Whether the map's view holds the whole box, and the share of the view's width and height it fills."""
    return page.evaluate("""([minx, miny, maxx, maxy]) => {
        const view = window.gridgov.map.getBounds();
        const inside = view.contains(L.latLngBounds([[miny, minx], [maxy, maxx]]));
        return { inside, width: (maxx - minx) / (view.getEast() - view.getWest()),
                 height: (maxy - miny) / (view.getNorth() - view.getSouth()),
                 zoom: window.gridgov.map.getZoom() };
    }""", bbox)


def test_a_full_address_is_found_and_framed_by_keyboard(page, estate, city_db):
    type_query(page, estate["address"], estate["building"])
    page.keyboard.press("ArrowDown")
    assert page.evaluate(f"{FIRST_HIT}.getAttribute('aria-selected')") == "true"
    assert page.evaluate("document.querySelector('#search').getAttribute('aria-activedescendant')") == "search-hit-0"
    page.keyboard.press("Enter")
    page.locator("#responsibility").wait_for()
    settle(page)
    assert page.locator("#search-results").is_hidden()
    view = framed(page, bbox_of(city_db, "building", estate["building"]))
    assert view["inside"] and view["zoom"] >= 17, view
    assert page.locator("[data-layer=building]").is_checked(), "a building found switches the building layer on"


def test_a_phase_in_chinese_numerals_is_found_and_framed_by_keyboard(page, estate, city_db):
    type_query(page, "机械厂宿舍二期", estate["first"])
    codes = page.evaluate("[...document.querySelectorAll('#search-results li[data-index]')]"
                          ".map((li) => li.dataset.code)")
    assert estate["second"] not in codes, "the phase asked for, not its neighbour"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.querySelector('#search-results li.active').dataset.code") == estate["first"]
    page.keyboard.press("Enter")
    settle(page)
    view = framed(page, bbox_of(city_db, "compound", estate["first"]))
    assert view["inside"] and (view["width"] > 0.2 or view["height"] > 0.2), view
    assert page.evaluate("document.querySelector('#search').value") == "机械厂宿舍2期"


def test_a_community_is_framed_whole_and_escape_closes_the_list(page, estate, city_db):
    type_query(page, estate["community"], estate["community_code"])
    page.keyboard.press("Escape")
    assert page.locator("#search-results").is_hidden()
    page.keyboard.press("ArrowDown")  # opens the same results again, first row chosen
    active = "document.querySelector('#search-results li.active').dataset.code"
    assert page.evaluate(active) == estate["community_code"]
    for key in ("ArrowDown", "ArrowDown", "ArrowUp"):  # down twice and back up: the second row
        page.keyboard.press(key)
    assert page.evaluate(active) == page.evaluate(
        "document.querySelector('#search-results li[data-index=\"1\"]').dataset.code")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    settle(page)
    view = framed(page, bbox_of(city_db, "community", estate["community_code"]))
    assert view["inside"] and (view["width"] > 0.3 or view["height"] > 0.3), view
