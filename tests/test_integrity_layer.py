"""The administrators' integrity layer on the deliberately broken pyramid (fixtures/broken.py): GET
/map/integrity.geojson holds exactly the faults `gridgov check` reports, each with its kind in Chinese, the features
involved and its place; only administrators read it; on the map page the switch shows for an administrator only,
draws one shape per fault and the legend names the kinds found as the server names them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import shapely
from conftest import LiveServer, _clone
from sqlalchemy.ext.asyncio import create_async_engine
from test_checks import EXPECTED

from fixtures.broken import build_broken
from gis.access import auth
from gis.db.engine import with_driver
from gis.layers.checks import KIND_NAMES_ZH
from tests.browser.harness import Browser, checked_page, screenshot, settle, sign_in, wait_until

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "integrity layer password"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def broken(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    build_broken(url)

    async def users():
        engine = create_async_engine(with_driver(url, "asyncpg"))
        async with engine.begin() as conn:
            await auth.create_user(conn, "ig-admin", PASSWORD, "admin", [], None)
            await auth.create_user(conn, "ig-planner", PASSWORD, "planner", [], None)
            await auth.create_user(conn, "ig-street", PASSWORD, "street", ["370902001"], None)
        await engine.dispose()

    asyncio.run(users())
    server = LiveServer(url)
    with server.client() as http:
        server.tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in ("ig-admin", "ig-planner", "ig-street")}
    yield {"url": url, "server": server}
    server.stop()


def _get(broken, who, **params):
    headers = {"Authorization": f"Bearer {broken['server'].tokens[who]}"} if who else {}
    with broken["server"].client(headers=headers) as http:
        return http.get("/map/integrity.geojson", params=params, timeout=120)


@pytest.fixture(scope="module")
def layer(broken):
    answer = _get(broken, "ig-admin")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/geo+json")
    return answer.json()


def test_the_layer_holds_exactly_what_gridgov_check_reports(broken, layer, tmp_path):
    found = [(f["properties"]["layer"], f["properties"]["code"], f["properties"]["kind"]) for f in layer["features"]]
    assert set(found) == EXPECTED and len(found) == len(EXPECTED) == layer["faults"]
    # the same as the command prints and writes, run on the same database
    out = tmp_path / "faults.geojson"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "gridgov"), "check", "--geojson", str(out)], cwd=ROOT, capture_output=True,
        text=True, env={**os.environ, "GRIDGOV_DATABASE_URL": broken["url"]}, timeout=120)
    assert result.returncode == 1, result.stderr
    command = [(f["properties"]["layer"], f["properties"]["code"], f["properties"]["kind"])
               for f in json.loads(out.read_text(encoding="utf-8"))["features"]]
    assert found == command


def test_each_fault_has_its_chinese_kind_the_features_involved_and_a_place(layer):
    by_key = {(f["properties"]["layer"], f["properties"]["code"], f["properties"]["kind"]): f
              for f in layer["features"]}
    for feature in layer["features"]:
        p = feature["properties"]
        assert p["kind_zh"] == KIND_NAMES_ZH[p["kind"]] and CJK.search(p["message_zh"]), p
        assert not re.search(r"[A-Za-z]{4,}", p["message_zh"] + p["kind_zh"] + p["layer_zh"]), p
        assert p["involved"][0] == {"layer": p["layer"], "layer_zh": p["layer_zh"], "code": p["code"]}
        assert feature["geometry"] is not None
    overlap = by_key[("building", "370902001001001001003", "overlap")]
    assert [i["code"] for i in overlap["properties"]["involved"]] == ["370902001001001001003", "370902001001001001004"]
    assert shapely.geometry.shape(overlap["geometry"]).bounds == pytest.approx((117.0305, 36.1305, 117.031, 36.131))
    gap = shapely.geometry.shape(by_key[("street", "370902002", "gap")]["geometry"])
    assert gap.area == pytest.approx(shapely.box(117.10, 36.29, 117.20, 36.30).area, rel=1e-6)
    outside = by_key[("compound", "370902002001C0001", "outside_parent")]
    assert outside["properties"]["involved"][1] == {"layer": "community", "layer_zh": "社区", "code": "370902002001"}
    assert shapely.geometry.shape(outside["geometry"]).bounds == pytest.approx((117.12, 36.095, 117.13, 36.10))
    for key in (("building", "370902001001001001002", "invalid_geometry"),
                ("micro_grid", "370902009009009001", "orphan_code"),
                ("building", "370902001001001001007", "duplicate_code")):
        assert by_key[key]["geometry"]["type"] == "Point", key
    orphan = shapely.geometry.shape(by_key[("micro_grid", "370902009009009001", "orphan_code")]["geometry"])
    assert shapely.box(117.25, 36.15, 117.26, 36.16).contains(orphan)
    assert "自相交" in by_key[("building", "370902001001001001002", "invalid_geometry")]["properties"]["message_zh"]


def test_only_administrators_read_the_layer(broken):
    assert _get(broken, None).status_code == 401
    for who in ("ig-planner", "ig-street"):
        answer = _get(broken, who)
        assert answer.status_code == 403 and CJK.search(answer.json()["detail"]), answer.text
    for bad in ("nan", "-1", "abc", "1e99"):
        answer = _get(broken, "ig-admin", tolerance=bad)
        assert answer.status_code == 400 and CJK.search(answer.json()["detail"]), (bad, answer.text)
    # a tolerance above every fault's area leaves only the faults that have none
    answer = _get(broken, "ig-admin", tolerance="1e9")
    kinds = {f["properties"]["kind"] for f in answer.json()["features"]}
    assert kinds == {"invalid_geometry", "orphan_code", "duplicate_code"}


@pytest.fixture(scope="module")
def browser(broken):
    driver = Browser(broken["server"].url)
    yield driver
    driver.close()


def test_the_administrator_switches_the_layer_on_and_reads_its_legend(browser, layer):
    with checked_page(browser) as page:
        browser.open_map(page)
        switch = page.locator('[data-layer="integrity"]')
        assert page.locator('[data-layer="street"]').is_visible()
        assert not switch.is_visible(), "the public has no integrity switch"
        sign_in(page, "ig-planner", PASSWORD)
        page.click('[data-tab="layers"]')
        assert not switch.is_visible(), "a planner has no integrity switch"
    with checked_page(browser) as page:  # a new tab starts signed out
        browser.open_map(page)
        switch = page.locator('[data-layer="integrity"]')
        sign_in(page, "ig-admin", PASSWORD)
        page.click('[data-tab="layers"]')
        assert switch.is_visible()
        switch.check()
        wait_until(page, "window.gridgov.layers.integrity.group.getLayers().length > 0")
        settle(page)
        drawn = page.evaluate("window.gridgov.layers.integrity.group.getLayers().length")
        assert drawn == len(layer["features"])
        kinds = {f["properties"]["kind"] for f in layer["features"]}
        legend = page.evaluate("[...document.querySelectorAll('[data-legend=\"integrity\"] li')]"
                               ".map(li => [li.dataset.legendEntry, li.textContent.trim()])")
        assert sorted(legend) == sorted([f"fault:{kind}", KIND_NAMES_ZH[kind]] for kind in kinds)
        screenshot(page, "map-integrity-admin")
        page.click("#logout-button")
        settle(page)
        assert not switch.is_visible()
        assert page.evaluate("window.gridgov.layers.integrity.group.getLayers().length") == 0
        assert page.evaluate("document.querySelectorAll('[data-legend=\"integrity\"]').length") == 0
