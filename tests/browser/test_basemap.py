"""The base map in Debian's Chromium against the running app on the small city: built from the city's layers,
configured with GRIDGOV_BASEMAP, it draws beneath the thematic layers (a grey city, white roads, blue water and
names written on it) with no request leaving the app's origin; it is switched off and on again in the layer
list; and an app without a base map shows none and offers no switch for it.

Colours are read from screenshots: the share of the map's pixels in the base map's own colours, not a timing.
"""

from __future__ import annotations

import io
import math
import sqlite3
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import pytest
from PIL import Image

from gis.basemap.build import build_basemap
from gis.serve.basemap import decompressed, read_all_tiles
from tests.browser.harness import Browser, checked_page, screenshot, settle, wait_until
from tests.conftest import LiveServer

CITY_GREY = (0xE4, 0xE2, 0xDD)
ROAD_WHITE = (0xFF, 0xFF, 0xFF)
WATER_BLUE = (0xB3, 0xD0, 0xEA)


@pytest.fixture(scope="module")
def basemap_file(city_db, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("basemap") / "city.mbtiles"
    build_basemap(city_db, path, road_names=("青年路", "东岳大街", "灵山大街"))
    return path


@pytest.fixture(scope="module")
def server(city_db, basemap_file):
    app = LiveServer(city_db, {"GRIDGOV_BASEMAP": str(basemap_file)})
    yield app
    app.stop()


@pytest.fixture(scope="module")
def browser(server):
    driver = Browser(server.url)
    yield driver
    driver.close()


def share(png: bytes, colour: tuple[int, int, int], box: tuple[int, int, int, int], tolerance: int = 6) -> float:
    """The share of the pixels in `box` (left, top, right, bottom) within `tolerance` of `colour`."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB").crop(box), dtype=int)
    return float(np.mean(np.all(np.abs(pixels - np.array(colour)) <= tolerance, axis=-1)))


def map_box(page) -> tuple[int, int, int, int]:
    box = page.locator("#map").bounding_box()
    return (int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"]))


def basemap_settled(page) -> None:
    """The map settled, the base map's tiles in view loaded and their names written, and no tile still fading in
    (Leaflet fades a new tile in over 200 ms: a screenshot meanwhile shows it half transparent)."""
    settle(page)
    wait_until(page, "window.gridgov.layers.basemap && window.gridgov.layers.basemap.parts.every((part) => "
                     "!window.gridgov.map.hasLayer(part) || (!part.isLoading() && [...part.getContainer()"
                     ".querySelectorAll('.leaflet-tile')].every((tile) => Number(tile.style.opacity || 1) === 1)))")


def centre_of_a_lake(path: Path) -> tuple[float, float]:
    """Longitude and latitude of the middle of a lake drawn in the built file's zoom-15 tiles."""
    for (z, x, y), body in sorted(read_all_tiles(path).items()):
        if z != 15:
            continue
        for feature in mapbox_vector_tile.decode(decompressed(body)).get("water", {}).get("features", []):
            if feature["properties"]["kind"] == "lake" and feature["geometry"]["type"] == "Polygon":
                ring = feature["geometry"]["coordinates"][0]
                px = sum(point[0] for point in ring) / len(ring)
                py = sum(point[1] for point in ring) / len(ring)
                n = 1 << z
                lon = (x + px / 4096) / n * 360 - 180
                lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 1 - py / 4096) / n))))
                return lon, lat
    raise AssertionError("the built base map has no lake")


def test_the_base_map_draws_beneath_the_layers_from_the_app_alone(browser, basemap_file):
    with checked_page(browser) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        browser.open_map(page)
        basemap_settled(page)
        assert page.locator("[data-layer='basemap']").is_checked()
        tiles = [url for url in browser.requests if "/basemap/" in url]
        assert tiles and all(".pbf?v=" in url for url in tiles)
        assert "底图" in page.locator(".leaflet-control-attribution").inner_text()
        screenshot(page, "basemap-desktop")

        # the base map alone, zoomed in: a grey city crossed by white roads, with names written on it
        lon, lat = centre_of_a_lake(basemap_file)
        page.evaluate("([lat, lon]) => { window.gridgov.map.setView([lat, lon], 16); }", [lat, lon])
        page.locator("[data-layer='street']").uncheck()
        for name in ("community", "grid", "compound"):
            page.locator(f"[data-layer='{name}']").uncheck()
        basemap_settled(page)
        shot = page.screenshot()
        box = map_box(page)
        assert share(shot, CITY_GREY, box) > 0.25
        assert share(shot, ROAD_WHITE, box, tolerance=2) > 0.02
        assert share(shot, WATER_BLUE, box) > 0.002
        written = page.evaluate("() => [...document.querySelectorAll('canvas.basemap-labels')]"
                                ".reduce((sum, canvas) => sum + Number(canvas.dataset.labels || 0), 0)")
        assert written > 0

        # switched off in the layer list, the base map's colours go; on again, they come back
        page.locator("[data-layer='basemap']").uncheck()
        settle(page)
        assert "basemap" not in page.evaluate("() => location.hash")
        assert share(page.screenshot(), CITY_GREY, box) < 0.01
        page.locator("[data-layer='basemap']").check()
        basemap_settled(page)
        assert share(page.screenshot(), CITY_GREY, box) > 0.25


def test_the_phone_shows_the_base_map(browser):
    with checked_page(browser) as page:
        page.set_viewport_size({"width": 390, "height": 844})
        browser.open_map(page)
        basemap_settled(page)
        shot = page.screenshot()
        assert share(shot, CITY_GREY, map_box(page)) > 0.05
        screenshot(page, "basemap-phone")


def test_without_a_base_map_there_is_none_and_no_switch(browser, live_app):
    driver = browser.sibling(live_app.url)
    try:
        with checked_page(driver) as page:
            driver.open_map(page)
            assert page.locator("[data-layer='basemap']").count() == 0
            assert page.locator("[data-layer='street']").count() == 1
            assert not any("/basemap/" in url for url in driver.requests)
            assert any(url.endswith("/basemap.json") for url in driver.requests)
    finally:
        driver.close()


def test_tile_coordinates_match_leaflet(browser):
    """The tiles the page asks for are the ones covering its view (XYZ, not TMS)."""
    with checked_page(browser) as page:
        browser.open_map(page, "#v=15/36.2/117.09&l=basemap")
        basemap_settled(page)
        asked = {tuple(int(part) for part in url.split("/basemap/")[1].split(".")[0].split("/"))
                 for url in browser.requests if "/basemap/15/" in url}
        n = 1 << 15
        x = int((117.09 + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(36.2))) / math.pi) / 2 * n)
        assert (15, x, y) in asked


def test_beyond_the_files_last_zoom_its_tiles_are_enlarged_not_asked_for(browser):
    browser.requests.clear()
    with checked_page(browser) as page:
        browser.open_map(page, "#v=19/36.2/117.09&l=basemap")
        basemap_settled(page)
        zooms = {int(url.split("/basemap/")[1].split("/")[0]) for url in browser.requests if "/basemap/" in url}
        assert zooms == {17}  # the file's last zoom; 18 and 19 are drawn from it
        assert share(page.screenshot(), CITY_GREY, map_box(page)) > 0.3


def test_the_base_map_seen_once_opens_again_without_a_network(browser, server):
    driver = browser.sibling(server.url)  # a profile of its own: the service worker and its caches start empty
    try:
        page = driver.new_page()
        page.set_viewport_size({"width": 1280, "height": 800})
        driver.open_map(page, "#v=15/36.2/117.09&l=basemap,street")
        wait_until(page, "window.gridgov.offline.controlled", 60_000)
        page.reload()  # now through the service worker, which keeps the tiles it passes on
        wait_until(page, "window.gridgov && window.gridgov.ready === true")
        basemap_settled(page)
        online = share(page.screenshot(), CITY_GREY, map_box(page))
        assert online > 0.25
        driver.context.set_offline(True)
        wait_until(page, "!navigator.onLine")
        page.reload()
        wait_until(page, "window.gridgov && window.gridgov.ready === true")
        basemap_settled(page)
        assert page.locator("[data-layer='basemap']").is_checked()
        assert share(page.screenshot(), CITY_GREY, map_box(page)) > 0.8 * online
    finally:
        driver.context.set_offline(False)
        driver.close()


RASTER_COLOUR = (0xC8, 0xDC, 0xF0)


def raster_mbtiles(path: Path, lon: float, lat: float) -> Path:
    """A raster base map of plain PNG squares in one colour: zoom 14 and 15 around a point, the rows in TMS."""
    square = io.BytesIO()
    Image.new("RGB", (256, 256), RASTER_COLOUR).save(square, format="PNG")
    rows = []
    for z in (14, 15):
        n = 1 << z
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        rows += [(z, x + dx, n - 1 - (y + dy), square.getvalue()) for dx in range(-4, 5) for dy in range(-4, 5)]
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE metadata (name text, value text); CREATE TABLE tiles "
                       "(zoom_level integer, tile_column integer, tile_row integer, tile_data blob);")
    conn.executemany("INSERT INTO metadata VALUES (?, ?)", [("format", "png"), ("minzoom", "14"), ("maxzoom", "15"),
                                                          ("attribution", "本市影像底图")])
    conn.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return path


def test_a_raster_base_map_is_drawn_as_image_tiles(browser, city_db, tmp_path):
    path = raster_mbtiles(tmp_path / "raster.mbtiles", 117.09, 36.2)
    app = LiveServer(city_db, {"GRIDGOV_BASEMAP": str(path)})
    driver = browser.sibling(app.url)
    try:
        with checked_page(driver) as page:
            page.set_viewport_size({"width": 1280, "height": 800})
            driver.open_map(page, "#v=16/36.2/117.09&l=basemap")  # beyond the file's last zoom: enlarged
            basemap_settled(page)
            assert share(page.screenshot(), RASTER_COLOUR, map_box(page), tolerance=3) > 0.9
            assert {url.split("/basemap/")[1].split("/")[0] for url in driver.requests if "/basemap/" in url} == {"15"}
            assert "本市影像底图" in page.locator(".leaflet-control-attribution").inner_text()
    finally:
        driver.close()
        app.stop()
