"""The callback (回访) in the browser (issue 19, item 3), driven by clicking in Debian's Chromium against the running
app on the small city: a street office opens a resolved closing from the desk's 解决率 figure, records at the
ticket that the resident says the problem is not solved, and the figure then counts that closing as handled (办结)
but not resolved, its drill-down saying why; the form fits a phone."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest

from gis.db.engine import libpq_url
from tests.browser.harness import Browser, bearer_token, checked_page, sign_in, wait_until
from tests.conftest import LiveServer
from tests.users import create_users

PASSWORD = "callback-browser-pw-1"
SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def app(city_db):
    street = sql(city_db, "SELECT code FROM street WHERE valid_to IS NULL ORDER BY code LIMIT 1")[0][0]

    create_users(city_db, PASSWORD, [("cb-street", "street", [street])])
    server = LiveServer(city_db)
    yield {"url": city_db, "server": server, "street": street}
    server.stop()


@pytest.fixture(scope="module")
def browser(app):
    driver = Browser(app["server"].url)
    yield driver
    driver.close()


def figure(app, unit: str) -> dict:
    headers = {"Authorization": f"Bearer {bearer_token(app['server'].url, 'cb-street', PASSWORD)}"}
    rows = httpx.get(f"{app['server'].url}/tickets/rates", params={"level": "grid", "unit": unit},
                     headers=headers).json()["rows"]
    return rows[0]


def test_a_not_solved_callback_moves_a_closing_from_resolved_to_handled(app, browser):
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "cb-street", PASSWORD)
        page.click("#desk-rates-open")
        wait_until(page, "document.querySelector('#rates-note').dataset.loaded !== undefined")
        assert "重复投诉" in page.locator("#rates-note").inner_text()
        cell = page.locator("#rates-table tbody tr[data-unit] [data-rate=resolution]").first
        unit = cell.get_attribute("data-unit")
        before = figure(app, unit)
        cell.click()
        page.locator("#drill").wait_for()
        line = page.locator("#drill li.in-numerator").first
        ticket = int(line.get_attribute("data-ticket"))
        line.click()
        page.click("#desk-close")  # the wide sheet lies over the side panel on a narrower screen
        page.locator("#callback-form").wait_for()
        page.check("#callback-form input[name=callback-solved][value=false]")
        page.check("#callback-form input[name=callback-satisfied][value=false]")
        page.fill("#callback-note", "居民说问题还在，楼道仍有积水")
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1280, "height": 800})
        page.locator("#callback-form").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENS / "callback-desktop.png"))
        page.click("#callback-submit")
        page.locator("#callback-answer").wait_for()
        assert "问题未解决" in page.locator("#callback-answer").inner_text()
        assert "北京时间" in page.locator("#callback-answer").inner_text()
        assert sql(app["url"], "SELECT callback_solved, callback_satisfied, state FROM ticket WHERE id = %s",
                   (ticket,)) == [(False, False, "closed")]
        history = page.locator("#ticket .history").inner_text()
        assert "回访" in history and "楼道仍有积水" in history
        after = figure(app, unit)
        assert (after["closed"], after["resolved"]) == (before["closed"], before["resolved"] - 1)
        assert after["callback_unsolved"] == before["callback_unsolved"] + 1
        # the figure's drill-down says why the closing is not resolved any more
        page.click("#desk-rates-open")
        wait_until(page, "document.querySelector('#rates-table')")
        page.locator(f"#rates-table tbody tr[data-unit='{unit}'] [data-rate=resolution]").click()
        page.locator(f"#drill li[data-ticket='{ticket}']").wait_for()
        item = page.locator(f"#drill li[data-ticket='{ticket}']")
        assert "in-numerator" not in (item.get_attribute("class") or "")
        assert "回访：问题未解决" in item.inner_text()
        # on a phone the ticket panel with its callback answer fits the width
        page.click("#desk-close")
        page.set_viewport_size({"width": 390, "height": 844})
        item.click()
        page.locator("#callback-answer").wait_for()
        page.evaluate("() => window.gridgov.map.invalidateSize()")
        page.locator("#callback-answer").scroll_into_view_if_needed()
        page.wait_for_timeout(300)  # tiles drawn for the picture only; nothing is asserted on them
        page.screenshot(path=str(SCREENS / "callback-phone.png"))
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_the_offline_warm_up_never_reads_a_written_address_again(app, browser):
    """On a first visit the page reads its start again through the service worker once it takes over; a slow
    service worker may take over after the person has written (a callback, a comment). Resource timings list a
    write's address without its method, and reading it again answered 405 in the page's console."""
    ticket = sql(app["url"], """SELECT t.id FROM ticket t JOIN complaint c ON c.id = t.complaint_id
                                WHERE c.micro_grid_code LIKE %s ORDER BY t.id LIMIT 1""", (app["street"] + "%",))[0][0]
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "cb-street", PASSWORD)
        warm = page.evaluate("""async (id) => {
            const { api } = await import('/static/map/api.js');
            await api(`/tickets/${id}/comments`, { method: 'POST', body: { note: '回访前先记一笔' } });
            await api(`/tickets/${id}`);
            const { warmUrls } = await import('/static/map/offline/install.js');
            const timed = performance.getEntriesByType('resource').map((entry) => entry.name);
            return { timed, warm: warmUrls() };
        }""", ticket)
        comments = f"{app['server'].url}/tickets/{ticket}/comments"
        assert comments in warm["timed"]  # the write is among the resource timings ...
        assert comments not in warm["warm"]  # ... and the warm-up leaves it out
        assert f"{app['server'].url}/tickets/{ticket}" in warm["warm"]  # while the read after it is kept
