"""The red/black list and the credit files in the browser (issue 18, item 2), driven by clicking in Debian's
Chromium against the running app on the small city: the planner opens the list of a half-year from the planner
tab, sorts it, opens a company's credit file from it and sees exactly that company's compounds outlined and
framed on the map (the API's compounds), and clearing the selection removes them; a street office sees only the
companies serving its street; the desk's rating form picks a company by name and posts a rating without an id
typed; on a phone the list is usable with no sideways scrolling of the page."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from gis.db.engine import libpq_url
from tests.browser.harness import (
    ARTIFACTS,
    Browser,
    bearer_token,
    checked_page,
    screenshot,
    settle,
    sign_in,
    wait_until,
)
from tests.conftest import LiveServer
from tests.users import create_users

PASSWORD = "red-black-list-pw-1"


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def serving(url: str, street: str) -> set[int]:
    """The oracle: companies managing a current compound whose code starts with the street's code."""
    return {row[0] for row in sql(url, "SELECT DISTINCT property_company_id FROM compound WHERE valid_to IS NULL "
                                       "AND property_company_id IS NOT NULL AND code LIKE %s", (street + "%",))}


@pytest.fixture(scope="module")
def city(city_db) -> dict:
    street = sql(city_db, "SELECT code FROM street WHERE valid_to IS NULL ORDER BY code LIMIT 1")[0][0]

    create_users(city_db, PASSWORD, [
        ("rb-planner", "planner", []),
        ("rb-street", "street", [street]),
        ("rb-admin", "admin", []),
    ])
    return {"url": city_db, "street": street}


@pytest.fixture(scope="module")
def app(city):
    server = LiveServer(city["url"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(app):
    driver = Browser(app.url)
    yield driver
    driver.close()


def read(app, username: str, path: str, **params):
    token = bearer_token(app.url, username, PASSWORD)
    answer = httpx.get(f"{app.url}{path}", params=params, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def open_list(page, period: str) -> None:
    page.click("button[data-tab=planner]")
    page.click("#rating-open")
    page.wait_for_selector("#rating-sheet:not([hidden])")
    page.select_option("#rating-period", period)
    wait_until(page, "document.querySelector('#rating-summary') && document.querySelector('#rating-table') "
                     "&& document.querySelector('#rating-note').textContent === ''")


def table_ids(page) -> list[int]:
    return page.evaluate("() => [...document.querySelectorAll('#rating-table tbody tr[data-company-id]')]"
                         ".map((tr) => Number(tr.dataset.companyId))")


def keep(page, name: str) -> None:
    """A screenshot in test-artifacts/ (docs/screens/ keeps copies of these, taken by hand from a run)."""
    screenshot(page, name)


def test_the_planner_opens_a_credit_file_from_the_list_and_sees_exactly_its_compounds_outlined(browser, app, city):
    listed = read(app, "rb-planner", "/analytics/evaluations/2026H1")
    rows = {row["company_id"]: row for row in listed["rows"]}
    # the company with the most compounds, so the outline is more than one shape
    company = max(rows, key=lambda c: (rows[c]["compounds"] or 0, -c))
    compounds = read(app, "rb-planner", f"/analytics/companies/{company}/compounds.geojson")["features"]
    assert len(compounds) >= 2
    with checked_page(browser) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        browser.open_map(page)
        sign_in(page, "rb-planner", PASSWORD)
        open_list(page, "2026H1")
        assert sorted(table_ids(page)) == sorted(rows)
        assert page.is_hidden("#rating-compute")  # computing is the administrator's
        # each row shows its standing as the API wrote it, in Chinese
        for tr in page.query_selector_all("#rating-table tbody tr[data-company-id]"):
            row = rows[int(tr.get_attribute("data-company-id"))]
            expected = "数据不足" if row["insufficient_data"] else {"red": "红榜", "black": "黑榜"}.get(
                row["standing"], "未上榜")
            assert expected in tr.inner_text()
        assert table_ids(page)[0] == min(rows, key=lambda c: (rows[c]["rank"] is None, rows[c]["rank"] or 0))
        page.click("#rating-table th[data-key=total_score] button")  # scores sort highest first
        totals = [rows[c]["total_score"] for c in table_ids(page)]
        assert totals == sorted(totals, reverse=True)
        page.click("#rating-table th[data-key=total_score] button")
        assert [rows[c]["total_score"] for c in table_ids(page)] == sorted(totals)
        keep(page, "red-black-list-1280x800")

        page.click(f"#rating-table .company-link[data-company-id='{company}']")
        wait_until(page, f"window.gridgov.highlighted.companyId === {company} "
                         "&& document.querySelector('#credit-name')")
        codes = page.evaluate("() => window.gridgov.highlighted.codes")
        assert sorted(codes) == sorted(f["properties"]["code"] for f in compounds)
        assert page.locator("path.rating-highlight").count() == len(compounds)
        # the map frames them, beside the sheet rather than under it
        lons = [x for f in compounds for poly in f["geometry"]["coordinates"] for ring in poly for x, _ in ring]
        lats = [y for f in compounds for poly in f["geometry"]["coordinates"] for ring in poly for _, y in ring]
        frame = """([w, s, e, n]) => {
            const map = window.gridgov.map;
            const sw = map.latLngToContainerPoint([s, w]), ne = map.latLngToContainerPoint([n, e]);
            const sheet = document.querySelector('#rating-sheet').getBoundingClientRect();
            const box = map.getContainer().getBoundingClientRect();
            return {inside: map.getBounds().contains(L.latLngBounds([s, w], [n, e])),
                    clear: sw.x + box.left >= sheet.right - 1, size: map.getSize()}; }"""
        box = [min(lons), min(lats), max(lons), max(lats)]
        # the framing's zoom animation and the sheet's layout may still be running on a busy machine: wait for
        # the map to come to rest (an ordering, not a time), then look
        wait_until(page, "!window.gridgov.map._animatingZoom && !window.gridgov.map._panAnim?._inProgress")
        settle(page)
        framed = page.evaluate(frame, box)
        assert framed["inside"] and framed["clear"], framed
        # the credit file: evaluations over periods, rectifications, inspections, ratings, reported items
        file_rows = {part: len(read(app, "rb-planner", f"/analytics/companies/{company}/credit-file",
                                    part=part)["rows"])
                     for part in ("evaluations", "rectifications", "inspections", "ratings")}
        file_rows["items"] = len(read(app, "rb-planner", "/evaluation/credit-items", company_id=company)["rows"])
        for part, count in file_rows.items():
            section = f"#credit-{part}"
            assert f"（{count}）" in page.inner_text(f"{section} h4"), part
            assert page.locator(f"{section} tbody tr").count() == count, part
        assert file_rows["evaluations"] >= 2
        assert page.locator("#credit-compounds tbody tr").count() == len(compounds)
        keep(page, "credit-file-1280x800")

        page.click("#rating-back")
        wait_until(page, "window.gridgov.highlighted.codes.length === 0")
        assert page.locator("path.rating-highlight").count() == 0
        assert page.is_visible("#rating-table")
        page.click("#rating-close")
        assert page.is_hidden("#rating-sheet")


def test_a_street_office_sees_only_the_companies_serving_its_street(browser, app, city):
    mine = serving(city["url"], city["street"])
    everyone = {row[0] for row in sql(city["url"], "SELECT DISTINCT property_company_id FROM compound "
                                                   "WHERE valid_to IS NULL AND property_company_id IS NOT NULL")}
    assert mine and mine < everyone
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "rb-street", PASSWORD)
        open_list(page, "2026H1")
        assert set(table_ids(page)) == mine
        assert "排名为全市排名" in page.inner_text("#rating-summary")
        company = min(mine)
        page.click(f"#rating-table .company-link[data-company-id='{company}']")
        wait_until(page, f"window.gridgov.highlighted.companyId === {company} "
                         "&& document.querySelector('#credit-items')")
        assert "无法查看" not in page.inner_text("#credit-items")  # its own company's reported items
        page.click("#rating-back")
        page.select_option("#rating-period", "2026")  # the year-end list of the same street
        wait_until(page, "document.querySelector('#rating-note').textContent === '' "
                         "&& window.gridgov.highlighted.codes.length === 0 && document.querySelector('#rating-table')")
        assert set(table_ids(page)) <= mine and table_ids(page)


def test_the_rating_forms_picker_posts_a_rating_without_typing_an_id(browser, app, city):
    mine = serving(city["url"], city["street"])
    names = dict(sql(city["url"], "SELECT id, name FROM property_company"))
    company = max(mine)
    compound, = sql(city["url"], "SELECT code FROM compound WHERE valid_to IS NULL AND property_company_id = %s "
                                 "AND code LIKE %s ORDER BY code LIMIT 1", (company, city["street"] + "%"))[0]
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "rb-street", PASSWORD)
        wait_until(page, "document.querySelectorAll('#eval-rating-company option[value]:not([value=\"\"])').length")
        offered = page.evaluate("() => [...document.querySelectorAll('#eval-rating-company option')]"
                                ".filter((o) => o.value).map((o) => [Number(o.value), o.textContent])")
        assert {c for c, _ in offered} == mine
        assert all(text == names[c] for c, text in offered)  # names a person reads, not ids
        assert page.get_attribute("#eval-rating-company", "type") is None  # a picker, no number field
        page.select_option("#eval-rating-company", label=names[company])
        page.fill("#eval-rating-period", "2026H2")
        page.fill("#eval-rating-score", "77.5")
        page.click("#eval-rating-submit")
        wait_until(page, "document.querySelector('#eval-rating-result').textContent === '已保存'")
        label = page.evaluate(f"() => document.querySelector('#eval-survey-compound option[value=\"{compound}\"]')"
                              ".textContent")
        assert names[company] in label
        page.select_option("#eval-survey-compound", label=label)
        page.fill("#eval-survey-day", "2026-11-03")
        page.fill("#eval-survey-sample", "52")
        page.fill("#eval-survey-score", "88")
        page.click("#eval-survey-submit")
        wait_until(page, "document.querySelector('#eval-survey-result').textContent === '已保存'")
    assert sql(city["url"], "SELECT score, rater_code FROM company_rating WHERE company_id = %s AND period = "
                            "'2026H2' AND rater_level = 'street' AND recorded_by = 'rb-street'",
               (company,)) == [(77.5, city["street"])]
    assert sql(city["url"], "SELECT company_id, sample_size, score FROM satisfaction_survey WHERE compound_code = %s "
                            "AND surveyed_on = '2026-11-03'", (compound,)) == [(company, 52, 88.0)]


def test_on_a_phone_the_list_and_a_credit_file_fit_the_screen(browser, app, city):
    listed = read(app, "rb-planner", "/analytics/evaluations/2026H1")["rows"]
    company = min(row["company_id"] for row in listed if row["standing"] == "black")
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "rb-planner", PASSWORD)
        page.set_viewport_size({"width": 390, "height": 844})
        browser.open_map(page)  # the phone's layout from the start, the session kept by the tab
        open_list(page, "2026H1")
        overflow = "() => [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]"
        wide, body, screen = page.evaluate(overflow)
        assert wide <= screen and body <= screen, (wide, body, screen)
        sheet = page.locator("#rating-sheet").bounding_box()
        assert sheet["x"] >= 0 and sheet["x"] + sheet["width"] <= 390
        keep(page, "red-black-list-390x844")
        link = page.locator(f"#rating-table .company-link[data-company-id='{company}']")
        link.scroll_into_view_if_needed()
        link.click()
        wait_until(page, f"window.gridgov.highlighted.companyId === {company} "
                         "&& document.querySelector('#credit-name')")
        wide, body, screen = page.evaluate(overflow)
        assert wide <= screen and body <= screen, (wide, body, screen)
        # the outlined compounds lie in the map above the sheet
        above = page.evaluate("""() => {
            const map = window.gridgov.map, top = document.querySelector('#rating-sheet').getBoundingClientRect().top;
            const box = map.getContainer().getBoundingClientRect();
            return [...document.querySelectorAll('path.rating-highlight')].every((p) => {
                const r = p.getBoundingClientRect(); return r.bottom <= top + 1 && r.top >= box.top - 1; }); }""")
        assert above
        keep(page, "credit-file-390x844")
    assert ARTIFACTS.is_dir()


def test_the_list_shows_the_parts_of_the_scheme_in_force(browser, city):
    """Tai'an's scheme (the community party organisation 60%): the street and community parts are two columns,
    each headed with its weight."""
    taian = {"GRIDGOV_EVAL_RESIDENTS_WEIGHT": "2", "GRIDGOV_EVAL_REGULATOR_WEIGHT": "1",
             "GRIDGOV_EVAL_STREET_WEIGHT": "1", "GRIDGOV_EVAL_COMMUNITY_WEIGHT": "6"}
    server = LiveServer(city["url"], extra_env=taian)
    other = browser.sibling(server.url)
    try:
        with checked_page(other) as page:
            other.open_map(page)
            sign_in(page, "rb-planner", PASSWORD)
            open_list(page, "2026H2")  # a preview, computed with the scheme in force
            heads = page.eval_on_selector_all("#rating-table thead th", "(ths) => ths.map((th) => th.dataset.key)")
            assert heads == ["rank", "name", "residents_score", "regulator_score", "street_score", "community_score",
                             "total_score", "standing"]
            assert page.inner_text("#rating-table th[data-key=community_score]").startswith("社区党组织（6）")
            assert page.inner_text("#rating-table th[data-key=street_score]").startswith("街道评价（1）")
        with checked_page(browser) as page:  # the default scheme: one street and community part
            browser.open_map(page)
            sign_in(page, "rb-planner", PASSWORD)
            open_list(page, "2026H2")
            assert page.locator("#rating-table th[data-key=community_score]").count() == 0
            assert page.inner_text("#rating-table th[data-key=street_score]").startswith("街道社区评价（2）")
    finally:
        other.close()
        server.stop()


def test_the_administrator_computes_a_period_not_yet_computed(browser, app, city):
    assert sql(city["url"], "SELECT count(*) FROM company_evaluation WHERE period = '2026H2'") == [(0,)]
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "rb-admin", PASSWORD)
        open_list(page, "2026H2")
        assert page.inner_text("#rating-summary").startswith("预览")
        assert page.inner_text("#rating-compute") == "计算并保存本期评价"
        page.click("#rating-compute")
        wait_until(page, "document.querySelector('#rating-note').textContent === '已计算并保存'")
        assert page.inner_text("#rating-summary").startswith("已计算保存")
        assert page.inner_text("#rating-compute") == "重新计算并保存"
        shown = set(table_ids(page))
    stored = {row[0] for row in sql(city["url"], "SELECT company_id FROM company_evaluation WHERE period = '2026H2'")}
    assert stored and shown == stored
