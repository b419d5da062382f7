"""未诉先办 in the browser (issue 19, item 4), driven by clicking in Debian's Chromium against the running app on
the small city with planted space-time patterns (fixtures/emerging_patterns.py): a street office opens the desk's
未诉先办 view, reads the month's recurring problems with the planted category first, opens the proactive tasks
(once: a second click opens none), and marks one done; the view fits a phone. Screenshots go to test-artifacts/
(docs/screens/ keeps copies taken by hand from a run)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from fixtures.emerging_patterns import plant_patterns
from gis.db.engine import libpq_url
from tests.browser.harness import Browser, checked_page, screenshot, sign_in, wait_until
from tests.conftest import LiveServer
from tests.users import create_users

PASSWORD = "proactive-browser-pw-1"


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def app(city_db):
    category, name = sql(city_db, "SELECT c.category_code, k.name_zh FROM complaint c JOIN category k "
                                  "ON k.code = c.category_code GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1")[0]
    planted = plant_patterns(city_db, category, datetime(2025, 11, 1, tzinfo=timezone(timedelta(hours=8))))
    persistent = next(code for code, kind in planted.centres.items() if kind == "persistent hot spot")
    street = persistent[:9]

    create_users(city_db, PASSWORD, [("pa-street", "street", [street])])
    server = LiveServer(city_db)
    yield {"url": city_db, "server": server, "street": street, "category": category, "name": name}
    server.stop()


@pytest.fixture(scope="module")
def browser(app):
    driver = Browser(app["server"].url)
    yield driver
    driver.close()


def test_a_street_office_reads_the_months_problems_and_opens_proactive_tasks(app, browser):
    with checked_page(browser) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        browser.open_map(page)
        sign_in(page, "pa-street", PASSWORD)
        page.click("#desk-proactive-open")
        page.locator("#problems-table tbody tr").first.wait_for()
        assert page.locator("#desk-title").inner_text().startswith("未诉先办")
        assert "每月一题" in page.locator("#problems-title").inner_text()
        first = page.locator("#problems-table tbody tr").first
        assert first.get_attribute("data-category") == app["category"] and app["name"] in first.inner_text()
        assert "热点" in first.inner_text()
        page.click("#proactive-open")
        wait_until(page, "document.querySelector('#proactive-note').textContent.includes('新发起')")
        note = page.locator("#proactive-note").inner_text()
        opened = int(note.split("新发起 ")[1].split(" ")[0])
        page.locator("#proactive-tasks tbody tr").first.wait_for()
        in_db = sql(app["url"], "SELECT count(*) FROM proactive_task WHERE state = 'open' AND street_code = %s",
                    (app["street"],))[0][0]
        assert opened == in_db > 0
        assert page.locator("#proactive-tasks tbody tr").count() == in_db
        screenshot(page, "proactive-desktop")
        # a second run opens nothing new: once per micro-grid × category
        page.click("#proactive-open")
        wait_until(page, "document.querySelector('#proactive-note').textContent.includes('新发起 0 项')")
        # one task done: it leaves the open list and the table
        row = page.locator("#proactive-tasks tbody tr").first
        task = int(row.get_attribute("data-task"))
        row.locator("button[data-task]").click()
        wait_until(page, f"!document.querySelector(\"#proactive-tasks tr[data-task='{task}']\")")
        assert sql(app["url"], "SELECT state FROM proactive_task WHERE id = %s", (task,)) == [("done",)]
        assert page.locator("#proactive-tasks tbody tr").count() == in_db - 1
        # on a phone the view fits the width
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(300)  # layout after the resize, for the picture only; nothing is asserted on it
        screenshot(page, "proactive-phone")
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
