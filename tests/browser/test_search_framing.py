"""What a search result does to the map, by clicking in Debian's Chromium on the small city: a street office found
is framed whole (the view holds its extent and is not much larger), and a building found switches the building
layer on when it was off and frames the building.
"""

from __future__ import annotations

import psycopg
import pytest

from gis.db.engine import libpq_url
from tests.browser.harness import Browser, checked_page, settle, wait_until


def sql(url: str, query: str, params=()) -> list[tuple]:
    """Rows of one statement."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def browser(live_app):
    driver = Browser(live_app.url)
    yield driver
    driver.close()


def search_and_click(page, text: str, kind: str, code: str) -> None:
    """Types a query and clicks the result of that kind and code."""
    page.fill("#search", text)
    hit = f"#search-results li[data-kind={kind}][data-code='{code}']"
    wait_until(page, f"document.querySelector(\"{hit}\")")
    page.locator(hit).click()
    settle(page)


def view_of(page, bbox) -> dict:
    """Whether the view holds the box, and the share of the view's width and height the box fills."""
    return page.evaluate("""([minx, miny, maxx, maxy]) => {
        const view = window.gridgov.map.getBounds();
        return { inside: view.contains(L.latLngBounds([[miny, minx], [maxy, maxx]])),
                 width: (maxx - minx) / (view.getEast() - view.getWest()),
                 height: (maxy - miny) / (view.getNorth() - view.getSouth()), zoom: window.gridgov.map.getZoom() };
    }""", list(bbox))


def test_a_street_result_frames_the_street(browser, city_db):
    code, name, *bbox = sql(city_db, """SELECT code, name, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)
                                        FROM street WHERE valid_to IS NULL ORDER BY code DESC LIMIT 1""")[0]
    with checked_page(browser) as page:
        browser.open_map(page, "#v=18/36.2/117.1&l=street,community")
        search_and_click(page, name, "street", code)
        view = view_of(page, bbox)
        assert view["inside"], view
        # fitted, not merely inside: one zoom further in would cut it
        assert max(view["width"], view["height"]) > 0.45, view


def test_a_building_result_shows_the_building_layer_and_frames_it(browser, city_db):
    code, number, compound, *bbox = sql(city_db, """
        SELECT b.code, b.number, c.name, ST_XMin(b.geom), ST_YMin(b.geom), ST_XMax(b.geom), ST_YMax(b.geom)
        FROM building b JOIN compound c ON c.code = b.compound_code AND c.valid_to IS NULL
        WHERE b.valid_to IS NULL ORDER BY b.code LIMIT 1""")[0]
    with checked_page(browser) as page:
        browser.open_map(page, "#v=13/36.2/117.1&l=street,community")
        assert not page.locator("[data-layer=building]").is_checked()
        search_and_click(page, f"{compound}{number}号楼", "building", code)
        assert page.locator("[data-layer=building]").is_checked()
        view = view_of(page, bbox)
        assert view["inside"] and view["zoom"] >= 17, view
        drawn = page.evaluate("""() => { const b = window.gridgov.layers.building;
            return window.gridgov.map.hasLayer(b.tiles || b.group); }""")
        assert drawn, "the building layer is drawn"
        assert "building" in page.evaluate(
            "[...document.querySelectorAll('#legend-body section')].map((s) => s.dataset.legend)")
