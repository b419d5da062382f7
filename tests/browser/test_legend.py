"""The map's legend and the hotspot colours, by clicking in Debian's Chromium against the running app on the small
city: the legend lists exactly the layers and overlays switched on, follows zoom for the layers that wait for one,
shows the colours the map draws with, and hot and cold spot classes stay apart for red-green colour-blind readers.
Screenshots of the legend at desktop and phone size go to docs/screens/.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import psycopg
import pytest

from gis.basemap.build import build_basemap
from gis.db.engine import libpq_url
from tests.browser.harness import Browser, checked_page, settle, wait_until
from tests.conftest import LiveServer

SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"
SECTIONS = "[...document.querySelectorAll('#legend-body section')].map((s) => s.dataset.legend)"


def sql(url: str, query: str, params=()) -> list[tuple]:
    """Rows of one statement."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def centre(city_db) -> tuple[float, float]:
    """(lat, lon) of the compound with the most buildings."""
    lon, lat = sql(city_db, """
        SELECT ST_X(ST_Centroid(c.geom)), ST_Y(ST_Centroid(c.geom)) FROM compound c WHERE c.valid_to IS NULL
        ORDER BY (SELECT count(*) FROM building b WHERE b.compound_code = c.code AND b.valid_to IS NULL) DESC, c.code
        LIMIT 1""")[0]
    return lat, lon


@pytest.fixture(scope="module")
def browser(live_app):
    driver = Browser(live_app.url)
    yield driver
    driver.close()


def sections(page) -> list[str]:
    return page.evaluate(SECTIONS)


def entries(page, section: str) -> list[str]:
    return page.evaluate(f"[...document.querySelectorAll('#legend-body section[data-legend=\"{section}\"] li')]"
                         ".map((li) => li.dataset.legendEntry)")


def switch(page, layer: str, on: bool) -> None:
    """Ticks or clears a layer's box in the layer list, then waits for the redraw."""
    box = page.locator(f"[data-layer={layer}]")
    box.check() if on else box.uncheck()
    settle(page)


def zoom_to(page, zoom: int) -> None:
    page.evaluate(f"() => {{ window.gridgov.map.setZoom({zoom}, {{ animate: false }}); }}")
    settle(page)


def test_the_legend_lists_exactly_what_is_switched_on(browser, centre):
    lat, lon = centre
    with checked_page(browser) as page:
        browser.open_map(page, f"#v=15/{lat:.6f}/{lon:.6f}&l=street,community")
        assert sections(page) == ["street", "community"]
        switch(page, "grid", True)
        assert sections(page) == ["street", "community", "grid"]
        switch(page, "community", False)
        assert sections(page) == ["street", "grid"]
        # a layer waiting for a zoom is not listed until it draws
        switch(page, "building", True)
        assert "building" not in sections(page)
        switch(page, "compound", True)
        assert sections(page) == ["street", "grid", "compound"]
        assert entries(page, "compound") == ["mode:professional", "mode:community_led", "mode:entrusted",
                                             "mode:self_managed", "mode:none", "old_estate"]
        # the swatches are the colours the compounds are drawn with
        drawn = page.evaluate("""() => { const seen = {};
            window.gridgov.layers.compound.group.eachLayer((l) => {
                const p = l.feature.properties;
                if (!p.is_old_estate) seen[p.management_mode] = l.options.fillColor;
            }); return seen; }""")
        shown = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
            '#legend-body section[data-legend=compound] li')].map((li) => [li.dataset.legendEntry,
            li.querySelector('.sw').dataset.fill]))""")
        assert drawn and all(shown[f"mode:{mode}"] == colour for mode, colour in drawn.items()), (drawn, shown)
        switch(page, "party", True)
        assert entries(page, "party") == ["party:community_committee", "party:grid_branch", "party:compound_branch"]
        zoom_to(page, 14)
        assert entries(page, "party") == ["party:community_committee", "party:grid_branch"]
        switch(page, "complaint", True)
        assert entries(page, "complaint") == ["cluster", "cluster_overdue"]
        zoom_to(page, 17)
        assert sections(page) == ["street", "grid", "compound", "building", "party", "complaint"]
        complaint = entries(page, "complaint")
        assert complaint[:2] == ["cluster", "cluster_overdue"] and "overdue" in complaint
        assert "state:dispatched" in complaint and "state:closed" in complaint
        for layer in ("complaint", "party", "building", "compound", "grid"):
            switch(page, layer, False)
        assert sections(page) == ["street"]
        # the overlays: the heat map and the hotspots
        page.locator(".tabs button[data-tab=layers]").click()
        page.check("#heat-toggle")
        settle(page)
        assert sections(page) == ["street", "heat"]
        page.check("#hotspot-toggle")
        wait_until(page, f"{SECTIONS}.includes('hotspots')")
        assert entries(page, "hotspots") == ["hot_99", "hot_95", "hot_90", "cold_99", "cold_95", "cold_90", "rate"]
        page.uncheck("#heat-toggle")
        page.uncheck("#hotspot-toggle")
        settle(page)
        wait_until(page, f"!{SECTIONS}.includes('hotspots')")
        assert sections(page) == ["street"]
        # the planners' overlay adds the service gaps to the compounds' entries
        page.locator(".tabs button[data-tab=planner]").click()
        page.check("#planner-toggle")
        settle(page)
        assert "gap" in entries(page, "compound")
        # and the gap compounds it outlines get their own entry, counting those drawn
        wait_until(page, f"{SECTIONS}.includes('gaps')")
        assert entries(page, "gaps") == ["gap_compound"]
        drawn = page.evaluate("document.querySelector('#coverage-figures').dataset.gapsDrawn")
        gaps = page.locator("#legend-body section[data-legend=gaps] li")
        assert f"服务空白点 {drawn} 个" in gaps.inner_text()
        assert gaps.locator(".sw").get_attribute("data-colour") == "#b71c1c"
        page.uncheck("#planner-toggle")
        settle(page)
        wait_until(page, f"!{SECTIONS}.includes('gaps')")


@pytest.fixture(scope="module")
def basemap_browser(browser, city_db, tmp_path_factory):
    """A browser on an app that serves the small city's own base map."""
    path = tmp_path_factory.mktemp("legend-basemap") / "city.mbtiles"
    build_basemap(city_db, path)
    server = LiveServer(city_db, {"GRIDGOV_BASEMAP": str(path)})
    driver = browser.sibling(server.url)
    yield driver
    driver.close()
    server.stop()


def test_the_legend_lists_the_base_map_while_it_is_on(basemap_browser, centre):
    lat, lon = centre
    with checked_page(basemap_browser) as page:
        basemap_browser.open_map(page, f"#v=15/{lat:.6f}/{lon:.6f}&l=street")
        assert sections(page) == ["street"]
        switch(page, "basemap", True)
        assert sections(page) == ["basemap", "street"]
        land = ["basemap:city", "basemap:park", "basemap:plaza", "basemap:other", "basemap:water"]
        roads = ["basemap:road:primary", "basemap:road:secondary", "basemap:road:tertiary"]
        assert entries(page, "basemap") == land + roads + ["basemap:road:minor"]
        # the swatches are the colours the base map draws with (basemap.js's COLOURS)
        fills = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
            '#legend-body section[data-legend=basemap] li')].map((li) => [li.dataset.legendEntry,
            li.querySelector('.sw').dataset.fill || li.querySelector('.sw').dataset.colour]))""")
        assert (fills["basemap:city"], fills["basemap:park"], fills["basemap:water"]) == ("#e4e2dd", "#d5e5cc",
                                                                                         "#b3d0ea")
        assert fills["basemap:road:primary"] == "#ffffff"
        # roads between compounds are drawn from zoom 15 only, and so listed
        zoom_to(page, 13)
        assert entries(page, "basemap") == land + roads
        switch(page, "basemap", False)
        assert sections(page) == ["street"]


def test_the_legend_at_desktop_and_phone_size(browser, centre):
    lat, lon = centre
    SCREENS.mkdir(parents=True, exist_ok=True)
    with checked_page(browser) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        browser.open_map(page, f"#v=16/{lat:.6f}/{lon:.6f}&l=street,community,grid,compound,building,party,complaint")
        assert page.locator("#legend-body").is_visible()
        page.screenshot(path=str(SCREENS / "legend-desktop.png"))
    with checked_page(browser) as page:
        page.set_viewport_size({"width": 390, "height": 844})
        browser.open_map(page, f"#v=16/{lat:.6f}/{lon:.6f}&l=street,community,grid,compound,building,party,complaint")
        if page.locator("#topbar.account-open").count():  # signed out, a phone opens on the sign-in form
            page.locator("#account-toggle").click()
        # folded on a phone: a small button, the map clear
        assert page.locator("#legend-body").is_hidden()
        button = page.locator("#legend-toggle").bounding_box()
        assert button["width"] * button["height"] < 0.02 * 390 * 844
        page.screenshot(path=str(SCREENS / "legend-phone-folded.png"))
        page.locator("#legend-toggle").click()
        assert page.locator("#legend-body").is_visible()
        box = page.locator("#legend").bounding_box()
        assert box["width"] * box["height"] < 0.3 * 390 * 844, box
        page.screenshot(path=str(SCREENS / "legend-phone.png"))


# Machado, Oliveira and Fernandes (2009), severity 1, applied to linear RGB.
VISIONS = {
    "normal": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
}


def lab(colour: str, vision: str) -> np.ndarray:
    """CIE L*a*b* (D65) of a #rrggbb colour as a reader with `vision` sees it."""
    srgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], float) / 255
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    linear = np.clip(VISIONS[vision] @ linear, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_hot_and_cold_spot_classes_can_be_told_apart(browser):
    with checked_page(browser) as page:
        browser.open_map(page, "#l=street")
        # the hotspot layer's own style function, as it draws each class and the rates of the other units
        drawn = page.evaluate("""async () => {
            const { hotspotStyle } = await import('/static/map/layers/hotspots.js');
            const fill = (bin, rate) => hotspotStyle({ confidence_bin: bin, rate_per_1000: rate }, 10).fillColor;
            return { classes: { hot_99: fill(3, 5), hot_95: fill(2, 5), hot_90: fill(1, 5), cold_99: fill(-3, 5),
                                cold_95: fill(-2, 5), cold_90: fill(-1, 5) },
                     rates: [0, 2.5, 4.5, 6.5, 8.5, 10].map((rate) => fill(0, rate)) };
        }""")
    classes, rates = drawn["classes"], sorted(set(drawn["rates"]))
    assert len(rates) >= 4, "the other units are shaded by rate"
    for vision in VISIONS:
        seen = {name: lab(colour, vision) for name, colour in classes.items()}
        # hot spots warm, cold spots cool, whatever the reader's vision (the yellow-blue axis survives)
        assert all(seen[f"hot_{c}"][2] > 5 for c in (99, 95, 90)), (vision, seen)
        assert all(seen[f"cold_{c}"][2] < -5 for c in (99, 95, 90)), (vision, seen)
        # 99, 95 and 90% from dark to light
        for side in ("hot", "cold"):
            lightness = [seen[f"{side}_{c}"][0] for c in (99, 95, 90)]
            assert lightness[0] + 15 < lightness[1] and lightness[1] + 15 < lightness[2], (vision, side, lightness)
        for (a, la), (b, lb) in itertools.combinations(seen.items(), 2):
            assert np.linalg.norm(la - lb) > 15, (vision, a, b)
        for name, colour in itertools.product(seen, rates):
            assert np.linalg.norm(seen[name] - lab(colour, vision)) > 10, (vision, name, colour)
