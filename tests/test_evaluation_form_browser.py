"""The evaluation form in the desk, driven in Debian's Chromium against the running app on the small city: a
street office rates a company serving its street and records a satisfaction survey; a refused value shows the
server's Chinese reason and stores nothing."""

from __future__ import annotations

import psycopg
import pytest

from gis.db.engine import libpq_url
from tests.browser.harness import Browser, checked_page, sign_in, wait_until
from tests.conftest import LiveServer
from tests.users import create_users

PASSWORD = "evaluation-form-pw-1"


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def city(city_db) -> dict:
    street, company, compound = sql(city_db, """
        SELECT cm.street_code, cp.property_company_id, cp.code FROM compound cp
        JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
        WHERE cp.valid_to IS NULL AND cp.property_company_id IS NOT NULL ORDER BY cm.street_code, cp.code
        LIMIT 1""")[0]

    create_users(city_db, PASSWORD, [("eval-street", "street", [street])])
    return {"street": street, "company": company, "compound": compound, "url": city_db}


@pytest.fixture(scope="module")
def browser(city):
    server = LiveServer(city["url"])
    driver = Browser(server.url)
    yield driver
    driver.close()
    server.stop()


def test_a_street_rates_a_company_and_records_a_survey_from_the_desk(browser, city):
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "eval-street", PASSWORD)
        assert page.is_visible("#eval-box")
        wait_until(page, f"document.querySelector('#eval-rating-company option[value=\"{city['company']}\"]')")
        page.select_option("#eval-rating-company", str(city["company"]))
        page.fill("#eval-rating-period", "2026H1")
        page.fill("#eval-rating-score", "150")
        page.click("#eval-rating-submit")
        wait_until(page, "document.querySelector('#eval-rating-result').textContent.startsWith('未保存')")
        assert "0 到 100" in page.inner_text("#eval-rating-result")
        # the browser logs the refused request (400) it was meant to get; nothing else may be logged
        assert [e for e in browser.errors if "400" not in e] == []
        browser.errors.clear()
        page.fill("#eval-rating-score", "86.5")
        page.click("#eval-rating-submit")
        wait_until(page, "document.querySelector('#eval-rating-result').textContent === '已保存'")
        page.select_option("#eval-survey-compound", city["compound"])
        page.fill("#eval-survey-day", "2026-03-02")
        page.fill("#eval-survey-sample", "45")
        page.fill("#eval-survey-score", "91")
        page.click("#eval-survey-submit")
        wait_until(page, "document.querySelector('#eval-survey-result').textContent === '已保存'")
    assert sql(city["url"], "SELECT score, rater_code FROM company_rating WHERE company_id = %s AND period = "
                            "'2026H1' AND rater_level = 'street' AND recorded_by = 'eval-street'",
               (city["company"],)) == [(86.5, city["street"])]
    assert sql(city["url"], "SELECT sample_size, score FROM satisfaction_survey WHERE compound_code = %s AND "
                            "surveyed_on = '2026-03-02'", (city["compound"],)) == [(45, 91.0)]
