"""The planner's dashboard (issue 18, item 1) and the map's coverage overlay, by clicking in Debian's Chromium on
the small city: the planner opens the dashboard from the map's planner tab and reads every programme figure with
its target and gap exactly as /analytics/programme gives them; another area and date re-ask the API; the
overlay's numbers for the view are the API's for the same box, and the gap compounds drawn are /analytics/gaps'.
Screenshots at desktop (1280x800) and phone (390x844) size go to docs/screens/."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.browser.harness import Browser, checked_page, settle, sign_in, wait_until
from tests.conftest import LiveServer
from tests.users import create_users

PASSWORD = "dashboard-pw-123"
SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"


@pytest.fixture(scope="module")
def app(city_db):
    create_users(city_db, PASSWORD, [("dash-planner", "planner", [])])
    server = LiveServer(city_db)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(app):
    driver = Browser(app.url)
    yield driver
    driver.close()


def shown(row: dict, value=None) -> str:
    """The dashboard's reading of a value, written out independently of its script."""
    value = row["value"] if value is None else value
    if value is None:
        return "无数据"
    return f"{100 * value:.1f}%" if row["kind"] == "share" else f"{value:,} {row['unit_label']}"


def cards(page) -> dict[str, dict]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.card')].map((card) => [
        card.dataset.key, {value: card.querySelector('.value').textContent,
                           target: card.querySelector('.target').textContent,
                           gap: card.querySelector('.gap').textContent,
                           points: card.querySelectorAll('svg circle').length}]))""")


def test_planner_opens_the_dashboard_and_reads_the_apis_figures(app, browser):
    with checked_page(browser) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        browser.open_map(page)
        sign_in(page, "dash-planner", PASSWORD)
        page.click("button[data-tab=planner]")
        page.click("#dashboard-link")
        page.wait_for_url("**/dashboard")
        wait_until(page, "document.body.dataset.ready === 'true'")
        day = page.input_value("#dash-date")
        api = httpx.get(f"{app.url}/analytics/programme", params={"as_of": day}).json()
        trend = httpx.get(f"{app.url}/analytics/programme/trend", params={"until": day}).json()["rows"]
        assert len(trend) == 12
        seen = cards(page)
        assert set(seen) == {row["key"] for row in api["rows"]} and len(seen) == 18
        for row in api["rows"]:
            card = seen[row["key"]]
            assert card["value"] == shown(row), row["key"]
            if row["target"] is None:
                assert card["target"] == "目标：无" and card["gap"] == "未设目标"
            else:
                assert card["target"] == f"目标：{shown(row, row['target'])}"
                assert card["gap"] == ("已达标" if row["met"] else card["gap"]) and card["gap"].startswith(
                    "已达标" if row["met"] else "差 ")
            # the monthly trend: a point for each of the last 12 month ends with a value
            assert card["points"] == sum(month[row["key"]] is not None for month in trend) > 0 or (
                row["key"] == "fee_collection" and card["points"] == 0)
        assert f"截至 {day}（北京时间）" in page.text_content("#dash-status")
        assert page.get_attribute("#dash-xlsx", "href").endswith("format=xlsx")
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / "dashboard-desktop.png"), full_page=False)
        # another level and area: the figures are the API's for that street
        page.select_option("#dash-level", "street")
        wait_until(page, "document.body.dataset.ready === 'true' && !document.querySelector('#dash-area').disabled")
        street = page.input_value("#dash-area")
        api = httpx.get(f"{app.url}/analytics/programme", params={"level": "street", "code": street,
                                                                   "as_of": day}).json()
        seen = cards(page)
        assert all(seen[row["key"]]["value"] == shown(row) for row in api["rows"])
        assert api["meta"]["name"] in page.text_content("#dash-status")
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(SCREENS / "dashboard-phone.png"), full_page=False)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_map_overlay_shows_the_apis_numbers_and_gaps(app, browser):
    centre = httpx.get(f"{app.url}/analytics/gaps").json()["rows"][0]["code"]
    layer = httpx.get(f"{app.url}/layers/compound.geojson", params={"limit": 5000}).json()
    compound = next(f for f in layer["features"] if f["properties"]["code"] == centre)
    ring = compound["geometry"]["coordinates"][0][0]
    lon = sum(p[0] for p in ring) / len(ring)
    lat = sum(p[1] for p in ring) / len(ring)
    with checked_page(browser) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        browser.open_map(page, f"#v=15/{lat:.5f}/{lon:.5f}")
        page.click("button[data-tab=planner]")
        page.check("#planner-toggle")
        settle(page)
        wait_until(page, "document.querySelector('#coverage-summary')")
        bbox = page.get_attribute("#coverage-summary", "data-bbox")
        api = httpx.get(f"{app.url}/analytics/programme", params={"bbox": bbox}).json()
        rows = {row["key"]: row for row in api["rows"]}
        text = page.text_content("#coverage-summary")
        assert f"小区 {rows['gap_compounds']['denominator']} 个" in text
        assert f"（按建筑面积）{100 * rows['professional_area']['value']:.1f}%" in text
        assert f"物业管理覆盖 {100 * rows['old_estate_coverage']['value']:.1f}%" in text
        assert f"服务空白 {rows['gap_compounds']['value']} 个" in text
        table = page.evaluate("""() => Object.fromEntries(
            [...document.querySelectorAll('#coverage-figures tr[data-mode]')].map(
                (tr) => [tr.dataset.mode, Number(tr.children[1].textContent)]))""")
        assert table == {m["mode"]: m["compounds"] for m in api["meta"]["modes"]}
        gaps = httpx.get(f"{app.url}/analytics/gaps").json()["rows"]
        wait_until(page, "document.querySelector('#coverage-figures').dataset.gapsDrawn")
        assert int(page.get_attribute("#coverage-figures", "data-gaps-drawn")) == len(gaps) > 0
