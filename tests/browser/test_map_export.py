"""The exported HTML map opened in Debian's Chromium from file://, in a context where every request that is not
the page itself is aborted (and recorded): it draws with no request at all and no script error, its compound
layer has one path per compound of the street, its legend lists every layer and follows the layer switch."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import create_engine, text

from gis.db.engine import with_driver
from gis.reports import map_export
from tests.browser.harness import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, wait_until


@pytest.fixture(scope="module")
def exported(city_db, tmp_path_factory):
    engine = create_engine(with_driver(city_db, "psycopg"))
    with engine.connect() as conn:
        street = conn.execute(text("SELECT min(code) FROM street WHERE valid_to IS NULL")).scalar_one()
        made = map_export.build_map(conn, "street", street)
        expected = {
            "compounds": conn.execute(text("SELECT count(*) FROM compound WHERE valid_to IS NULL "
                                           "AND community_code LIKE :p"), {"p": street + "%"}).scalar_one(),
            "micro_grids": conn.execute(text("SELECT count(*) FROM micro_grid WHERE valid_to IS NULL "
                                             "AND code LIKE :p"), {"p": street + "%"}).scalar_one(),
        }
    engine.dispose()
    path = tmp_path_factory.mktemp("export") / "street.html"
    path.write_text(made.html, encoding="utf-8")
    return {"path": path, "made": made, "expected": expected}


@pytest.fixture(scope="module")
def sealed():
    """A Chromium context that aborts every request but the page's own file, and records each one it aborted."""
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    state = {"blocked": [], "errors": [], "own": None}
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 800})

    def guard(route):
        if route.request.url == state["own"]:
            route.continue_()
        else:
            state["blocked"].append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    context.on("request", lambda request: request.url != state["own"] and not request.url.startswith(
        ("data:", "blob:", "about:")) and state["blocked"].append(request.url))
    yield context, state
    context.close()
    browser.close()
    playwright.stop()


def _open(context, state, path, viewport=None):
    page = context.new_page()
    if viewport:
        page.set_viewport_size(viewport)
    page.on("pageerror", lambda error: state["errors"].append(str(error)))
    page.on("console", lambda message: message.type == "error" and state["errors"].append(message.text))
    state["own"] = path.as_uri()
    page.goto(state["own"])
    wait_until(page, "document.querySelectorAll('path.gg-compound').length > 0")
    return page


def test_the_file_draws_offline_with_no_request_and_no_error(sealed, exported):
    context, state = sealed
    page = _open(context, state, exported["path"])
    compounds = page.evaluate("document.querySelectorAll('path.gg-compound').length")
    assert compounds == exported["expected"]["compounds"]
    assert page.evaluate("document.querySelectorAll('path.gg-gap').length") == exported["made"].counts["gaps"]
    assert page.evaluate("document.querySelectorAll('path.gg-party').length") == exported["made"].counts["party"]
    assert page.evaluate("document.querySelectorAll('path.gg-hotspot').length") == 0  # off until switched on
    # the legend names every layer; the sections shown are those of the layers switched on
    titles = page.evaluate("[...document.querySelectorAll('#gg-legend section h2')].map(h => h.textContent)")
    assert titles == list(map_export.LAYER_TITLES.values())
    shown = page.evaluate("[...document.querySelectorAll('#gg-legend section:not([hidden]) h2')]"
                          ".map(h => h.textContent)")
    assert map_export.LAYER_TITLES["hotspot"] not in shown and map_export.LAYER_TITLES["mode"] in shown
    # the layer switch lists them all too, in Chinese
    switch = page.evaluate("[...document.querySelectorAll('.leaflet-control-layers-overlays label')]"
                           ".map(l => l.textContent.trim())")
    assert switch == list(map_export.LAYER_TITLES.values())
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "map-export-1280x800.png"))

    switch_of = page.locator(".leaflet-control-layers-overlays")
    switch_of.get_by_text(map_export.LAYER_TITLES["hotspot"], exact=True).click()
    wait_until(page, "document.querySelectorAll('path.gg-hotspot').length > 0")
    assert page.evaluate("document.querySelectorAll('path.gg-hotspot').length") == \
        exported["expected"]["micro_grids"]
    assert page.evaluate("!document.querySelector(`#gg-legend section[data-layer='%s']`).hidden"
                         % map_export.LAYER_TITLES["hotspot"])
    switch_of.get_by_text(map_export.LAYER_TITLES["mode"], exact=True).click()
    assert page.evaluate("document.querySelectorAll('path.gg-compound').length") == 0
    assert page.evaluate("document.querySelector(`#gg-legend section[data-layer='%s']`).hidden"
                         % map_export.LAYER_TITLES["mode"])
    assert "北京时间" in page.inner_text("#gg-made")
    page.close()
    assert state["blocked"] == [], f"the file asked for {state['blocked'][:5]}"
    assert state["errors"] == [], state["errors"][:5]


def test_the_file_on_a_phone(sealed, exported):
    context, state = sealed
    page = _open(context, state, exported["path"], {"width": 390, "height": 844})
    assert page.evaluate("document.querySelectorAll('path.gg-compound').length") == \
        exported["expected"]["compounds"]
    page.screenshot(path=str(ARTIFACTS / "map-export-390x844.png"))
    page.close()
    assert state["blocked"] == [] and state["errors"] == []


def test_the_guard_would_see_a_request(sealed, tmp_path):
    """Positive control: a page that does ask for something off the file is seen and stopped."""
    context, state = sealed
    page_file = tmp_path / "asks.html"
    page_file.write_text('<!doctype html><img src="http://192.0.2.1/x.png"><p class="gg">x</p>', encoding="utf-8")
    before = len(state["blocked"])
    page = context.new_page()
    state["own"] = page_file.as_uri()
    page.goto(state["own"])
    page.wait_for_load_state("load")
    page.close()
    assert any("192.0.2.1" in url for url in state["blocked"][before:])
    del state["blocked"][before:]
