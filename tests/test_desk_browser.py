"""The street office's desk in the map's work tab, driven by clicking in Debian's Chromium against the running app
on the small city: the rates with the tickets behind a figure, a supervision reminder the holder then sees, the
drawn area's bulk assignment with the overdue filter on (confirmed, and a repeat that changes nothing), and the
street report job when the deployment serves it.
"""

from __future__ import annotations

import json
import re

import httpx
import psycopg
import pytest

from gis.db.engine import libpq_url
from tests.browser.harness import (
    Browser,
    bearer_token,
    checked_page,
    map_pixel,
    screenshot,
    settle,
    sign_in,
    wait_until,
)
from tests.conftest import LiveServer
from tests.users import create_users

PASSWORD = "desk-test-password-1"


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def add_complaints(url: str, micro_grid: str, street: str, prefix: str, count: int, age: str) -> None:
    """Complaints copied from one of the micro-grid's own, reported `age` ago (the intake trigger opens their
    tickets), in the street's commonest category."""
    sql(url, """
        INSERT INTO complaint (source, external_id, category_code, description, address, reported_at, geom,
                               original_x, original_y, original_crs, match_level, placement, micro_grid_id,
                               micro_grid_code, grid_code, community_code, street_code, compound_code, building_code)
        SELECT 'patrol', %s || n, top.category_code, c.description, c.address,
               now() - CAST(%s AS interval) + n * interval '1 minute', c.geom, c.original_x, c.original_y,
               c.original_crs, c.match_level, c.placement, c.micro_grid_id, c.micro_grid_code, c.grid_code,
               c.community_code, c.street_code, c.compound_code, c.building_code
        FROM (SELECT * FROM complaint WHERE micro_grid_code = %s AND compound_code IS NOT NULL
              ORDER BY id LIMIT 1) c
        CROSS JOIN generate_series(1, %s) n
        CROSS JOIN (SELECT category_code FROM complaint WHERE street_code = %s
                    GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1) top""",
        (prefix, age, micro_grid, count, street))


@pytest.fixture(scope="module")
def live_app(city_db):
    server = LiveServer(city_db)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def city(city_db) -> dict:
    street, = sql(city_db, "SELECT code FROM street WHERE valid_to IS NULL ORDER BY code LIMIT 1")[0]
    compound, micro_grid, grid = sql(city_db, """
        SELECT c.code, m.code, m.grid_code FROM compound c
        JOIN building b ON b.compound_code = c.code AND b.valid_to IS NULL
        JOIN micro_grid m ON m.code = b.micro_grid_code AND m.valid_to IS NULL
        WHERE c.valid_to IS NULL AND m.grid_code LIKE %s
          AND EXISTS (SELECT 1 FROM complaint k WHERE k.micro_grid_code = m.code AND k.compound_code IS NOT NULL)
        ORDER BY c.code LIMIT 1""", (street + "%",))[0]
    # overdue tickets (reported 30 days ago) and fresh ones (an hour ago) at one spot of the compound
    add_complaints(city_db, micro_grid, street, "DESKOLD", 5, "30 days")
    add_complaints(city_db, micro_grid, street, "DESKNEW", 4, "1 hour")

    create_users(city_db, PASSWORD, [("desk-street", "street", [street]), ("desk-grid", "grid_worker", [grid])])
    return {"street": street, "compound": compound, "micro_grid": micro_grid, "grid": grid}


@pytest.fixture(scope="module")
def browser(live_app, city):
    driver = Browser(live_app.url)
    yield driver
    driver.close()


@pytest.fixture
def page(browser):
    with checked_page(browser) as page:
        yield page


def login(page, username: str) -> None:
    sign_in(page, username, PASSWORD)


def token(live_app, username: str) -> str:
    return bearer_token(live_app.url, username, PASSWORD)


LATIN_WORD = re.compile(r"[A-Za-z]{3,}")


def test_street_reads_its_rates_and_the_tickets_behind_a_figure(page, browser, city, live_app):
    browser.open_map(page)
    login(page, "desk-street")
    assert page.is_visible("#desk-box")
    page.click("#desk-rates-open")
    wait_until(page, "document.querySelector('#rates-note').dataset.loaded !== undefined")
    # the table is the API's figures, ranked on the chosen rate, the small units listed after, not ranked
    headers = {"Authorization": f"Bearer {token(live_app, 'desk-street')}"}
    api = httpx.get(f"{live_app.url}/tickets/rates", params={"level": "grid", "sort": "response"},
                    headers=headers).json()
    shown = page.evaluate("""() => [...document.querySelectorAll('#rates-table tbody tr[data-unit]')].map((tr) => [
        tr.dataset.unit, tr.children[0].textContent, tr.querySelector('[data-rate=response]').textContent])""")
    assert [unit for unit, _, _ in shown] == [row["unit"] for row in api["rows"]]
    for (unit, rank, figure), row in zip(shown, api["rows"]):
        assert rank == (str(row["response_rank"]) if row["response_rank"] else "不排名")
        assert figure == ("—" if row["response_rate"] is None else f"{row['response_rate'] * 100:.1f}%")
    assert not LATIN_WORD.search(page.locator("#desk-sheet").inner_text())

    # a click on a figure lists its tickets: as many as its denominator, the numerator's marked
    cell = page.locator("#rates-table tbody tr[data-unit] [data-rate=resolution]").first
    numerator, denominator = int(cell.get_attribute("data-numerator")), int(cell.get_attribute("data-denominator"))
    assert denominator > 0
    cell.click()
    page.locator("#drill").wait_for()
    assert page.locator("#drill li[data-ticket]").count() == denominator
    assert page.locator("#drill li.in-numerator").count() == numerator
    assert f"{numerator} / {denominator}" in page.locator("#drill").inner_text()
    screenshot(page, "desk")  # docs/img/desk.png is this picture

    # the monthly trend of the first unit: a point opens that month's tickets, as many as the point says
    point = page.locator("#rates-chart .trend-point[data-rate=resolution]").last
    month_denominator = int(point.get_attribute("data-denominator"))
    month = point.get_attribute("data-month")
    point.dispatch_event("click")  # another rate's point of the same month may lie over it
    wait_until(page, "document.querySelector('#drill') && "
                     f"document.querySelector('#drill').dataset.name.endsWith('{month}')")
    assert page.locator("#drill li[data-ticket]").count() == month_denominator
    assert "北京时间" in page.locator("#drill").inner_text()
    screenshot(page, "desk-rates")


def test_a_reminder_reaches_the_grid_worker_who_holds_the_ticket(page, browser, city, city_db):
    browser.open_map(page)
    login(page, "desk-street")
    page.click("#desk-overdue-open")
    wait_until(page, "document.querySelector('#overdue-note').dataset.total !== undefined")
    hours = page.evaluate("() => [...document.querySelectorAll('#overdue-list li[data-ticket]')]"
                          ".map((li) => Number(li.dataset.overdueHours))")
    assert hours and hours == sorted(hours, reverse=True)
    ticket_id, = sql(city_db, """SELECT t.id FROM ticket t JOIN complaint c ON c.id = t.complaint_id
                                 WHERE c.external_id LIKE 'DESKOLD%%' AND t.due_at < now() ORDER BY t.id LIMIT 1""")[0]
    line = page.locator(f"#overdue-list li[data-ticket='{ticket_id}']")
    text = line.inner_text()
    assert "北京时间" in text and "承办" in text and "期限" in text
    line.locator(".remind-button").click()
    line.locator(".supervise-note").fill("请今日内上门处理并回复居民")
    line.locator(".supervise-send").click()
    line.locator(".hint.done").wait_for()
    assert line.get_attribute("data-supervised") == "1"
    events = sql(city_db, "SELECT note FROM ticket_event WHERE ticket_id = %s AND action = 'supervise'", (ticket_id,))
    assert events == [("请今日内上门处理并回复居民",)]
    screenshot(page, "desk-overdue")

    page.click("#logout-button")
    login(page, "desk-grid")
    mine = page.locator(f"#my-tickets li[data-ticket='{ticket_id}']")
    mine.wait_for()
    assert mine.get_attribute("data-supervised") == "1" and "督办 1" in mine.inner_text()
    mine.click()
    page.locator("#ticket-supervision").wait_for()
    assert "请今日内上门处理并回复居民" in page.locator("#ticket-supervision").inner_text()
    assert "北京时间" in page.locator("#ticket").inner_text()


def test_the_overdue_filter_holds_for_the_drawn_area_and_a_repeat_assigns_nothing(page, browser, city, city_db):
    minx, miny, maxx, maxy = sql(city_db, """SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM
        (SELECT ST_Expand(geom, 0.0015) AS e FROM compound WHERE code = %s AND valid_to IS NULL) box""",
                                 (city["compound"],))[0]
    browser.open_map(page, f"#v=16/{(miny + maxy) / 2:.6f}/{(minx + maxx) / 2:.6f}&l=street,community,grid,compound")
    login(page, "desk-street")
    page.click("[data-tab=filters]")
    page.check("#filter-overdue")
    page.click("#filter-apply")
    settle(page)
    page.click("[data-tab=work]")
    page.click("#draw-area")
    for lon, lat in [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy)]:
        page.mouse.click(*map_pixel(page, lon, lat))
    page.click("#finish-area")
    wait_until(page, "document.querySelector('#area-summary').dataset.count !== undefined")
    drawn = page.evaluate("() => window.gridgov.drawn.vertices.map((p) => [p.lng, p.lat])")
    ring = json.dumps({"type": "Polygon", "coordinates": [drawn + [drawn[0]]]})
    inside = """FROM ticket t JOIN complaint c ON c.id = t.complaint_id
        WHERE t.state IN ('reported', 'registered', 'dispatched') AND t.street_code = %s
          AND ST_Intersects(c.geom, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326))"""
    overdue = {row[0] for row in sql(city_db, f"SELECT t.id {inside} AND t.due_at < now()", (city["street"], ring))}
    on_time = {row[0]: row[1] for row in sql(city_db, f"SELECT t.id, t.version {inside} AND t.due_at >= now()",
                                               (city["street"], ring))}
    assert overdue and on_time, "the drawn area needs overdue and on-time open tickets; the test city changed"
    assert set(page.evaluate("() => window.gridgov.areaTickets.map((t) => t.id)")) == overdue
    assert "仅超期" in page.locator("#area-summary").inner_text()
    first_line = page.locator("#area-tickets li").first.inner_text()
    assert "北京时间" in first_line and "期限" in first_line and "承办" in first_line

    option = page.locator("#assignee option", has_text="综合行政执法中队").first
    target = option.get_attribute("value")
    page.select_option("#assignee", target)
    page.click("#assign-button")
    page.locator("#assign-confirm-box:not([hidden])").wait_for()
    confirm = page.locator("#assign-confirm-text").inner_text()
    assert f"{len(overdue)} 件" in confirm and "综合行政执法中队" in confirm
    assert sql(city_db, "SELECT count(*) FROM ticket WHERE id = ANY(%s) AND department = '综合行政执法中队'",
               (sorted(overdue),))[0][0] == 0, "the confirmation must not assign anything"
    page.click("#assign-confirm")
    wait_until(page, "document.querySelector('#assign-result').dataset.assigned !== undefined")
    assert page.locator("#assign-result").get_attribute("data-assigned") == str(len(overdue))
    rows = sql(city_db, "SELECT assignee_kind, assignee_code, department FROM ticket WHERE id = ANY(%s)",
               (sorted(overdue),))
    assert set(rows) == {("street_department", city["street"], "综合行政执法中队")}
    assert dict(sql(city_db, "SELECT id, version FROM ticket WHERE id = ANY(%s)", (sorted(on_time),))) == on_time
    # the list refreshed, the target kept
    wait_until(page, "window.gridgov.areaTickets.every((t) => t.department === '综合行政执法中队')")
    assert page.locator("#assignee").input_value() == target
    versions = dict(sql(city_db, "SELECT id, version FROM ticket WHERE id = ANY(%s)", (sorted(overdue),)))
    events, = sql(city_db, "SELECT count(*) FROM ticket_event WHERE ticket_id = ANY(%s)", (sorted(overdue),))[0]

    # the same confirmation sent again changes nothing
    page.click("#assign-confirm")
    wait_until(page, "document.querySelector('#assign-result').dataset.replayed === '1'")
    assert page.locator("#assign-result").get_attribute("data-assigned") == "0"
    assert dict(sql(city_db, "SELECT id, version FROM ticket WHERE id = ANY(%s)", (sorted(overdue),))) == versions
    assert sql(city_db, "SELECT count(*) FROM ticket_event WHERE ticket_id = ANY(%s)", (sorted(overdue),))[0][0] \
        == events
    screenshot(page, "desk-assign")


def test_the_street_report_starts_and_downloads_its_pdf(page, browser, city, live_app, city_db, tmp_path):
    paths = httpx.get(f"{live_app.url}/openapi.json").json()["paths"]
    if "/reports/street" not in paths:
        pytest.skip("the street report job (POST /reports/street) is not served yet")
    browser.open_map(page)
    login(page, "desk-street")
    name, = sql(city_db, "SELECT name FROM street WHERE code = %s AND valid_to IS NULL", (city["street"],))[0]
    page.select_option("#report-street", label=name)
    page.click("#report-start")
    page.locator("#report-progress:not(:empty)").wait_for()
    # the page stays usable while the job runs
    page.click("#desk-overdue-open")
    wait_until(page, "document.querySelector('#overdue-note').dataset.total !== undefined")
    page.locator("#report-download").wait_for(timeout=180_000)
    with page.expect_download() as info:
        page.click("#report-download")
    saved = tmp_path / "report.pdf"
    info.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")
