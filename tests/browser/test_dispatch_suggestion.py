"""The dispatch suggestion where staff decide (issue 19, item 1), by clicking in Debian's Chromium against the
running app on the small city with a model trained on its history: a street office opens the review queue and sees
the model's three categories with confidences in percent, the words behind the first marked in the complaint's
text, and "模型不确定，请人工选择" for a vague text; it opens a ticket from the map, sees the suggestion kept at
intake with the model version, picks the suggested party into the dispatch form with one click and dispatches the
ticket to it. Without a trained model nothing shows and nothing fails. Screenshots at desktop and phone size."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import text

from gis.db.engine import async_engine, libpq_url
from gis.dispatch import store
from tests.browser.harness import Browser, bearer_token, checked_page, map_pixel, settle, sign_in, wait_until
from tests.conftest import LiveServer

PASSWORD = "suggestion-browser-pw-1"
SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"
VAGUE = "麻烦过来看一下，这个事情一直没人管"


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


async def _setup(url: str, street: str, complaint_id: int) -> dict:
    """The street office's user, and the newest model's suggestion kept with the ticket's complaint as intake keeps
    it."""
    from gis.access.auth import create_user

    engine = async_engine(url)
    try:
        async with engine.begin() as conn:
            await create_user(conn, "sg-street", PASSWORD, "street", [street])
            description = (await conn.execute(text("SELECT description FROM complaint WHERE id = :id"),
                                              {"id": complaint_id})).scalar_one()
            suggestion = await store.suggest(conn, description, "managed_compound")
            await store.record(conn, complaint_id, suggestion, False)
            return suggestion
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def app(city_db, tmp_path_factory):
    street = sql(city_db, "SELECT code FROM street WHERE valid_to IS NULL ORDER BY code LIMIT 1")[0][0]
    trained = store.train_from_history(city_db)
    _, model = store.load_version(city_db)
    # a ticket the street office will dispatch again: one closed in a managed compound of its street
    ticket_id, complaint_id, description, lon, lat, company = sql(city_db, """
        SELECT t.id, c.id, c.description, ST_X(c.geom), ST_Y(c.geom), t.property_company_id
        FROM ticket t JOIN complaint c ON c.id = t.complaint_id
        WHERE t.street_code = %s AND t.state = 'closed' AND c.geom IS NOT NULL AND c.placement <> 'review'
          AND t.property_company_id IS NOT NULL AND length(c.description) > 8
        ORDER BY t.id LIMIT 1""", (street,))[0]
    clear = model.suggest(description, "managed_compound")["categories"][0]["confidence"]
    vague = model.suggest(VAGUE)["categories"][0]["confidence"]
    assert vague < clear, (vague, clear)
    threshold = round((vague + clear) / 2, 4)  # the ticket's text is confident, the vague one abstains
    mp = pytest.MonkeyPatch()
    mp.setenv("GRIDGOV_DISPATCH_MIN_CONFIDENCE", str(threshold))
    kept = asyncio.run(_setup(city_db, street, complaint_id))
    mp.undo()
    category = sql(city_db, "SELECT code FROM category ORDER BY code LIMIT 1")[0][0]
    review_id = sql(city_db, """
        INSERT INTO complaint (source, category_code, description, address, reported_at, match_level, placement,
                               street_code)
        VALUES ('hotline', %s, %s, '某小区附近', now(), 'street', 'review', %s) RETURNING id""",
                    (category, VAGUE, street))[0][0]
    server = LiveServer(city_db, {"GRIDGOV_DISPATCH_MIN_CONFIDENCE": str(threshold)})
    yield {"url": city_db, "server": server, "street": street, "ticket": ticket_id, "lon": lon, "lat": lat,
           "company": company, "kept": kept, "review": review_id, "version": trained.version}
    server.stop()


@pytest.fixture(scope="module")
def browser(app):
    driver = Browser(app["server"].url)
    yield driver
    driver.close()


def open_work_tab(page) -> None:
    page.locator(".tabs button[data-tab=work]").click()


def test_the_review_queue_shows_the_suggestion_and_abstains_on_a_vague_text(app, browser):
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "sg-street", PASSWORD)
        open_work_tab(page)
        line = page.locator(f"#review-queue li[data-complaint='{app['review']}']")
        line.click()
        box = line.locator(".suggestion")
        box.wait_for()
        assert box.get_attribute("data-model-version") == str(app["version"])
        assert f"派单模型第 {app['version']} 版" in box.inner_text()
        categories = box.locator("[data-suggestion=category] li")
        assert categories.count() == 3
        shown = [int(text.rstrip("%")) for text in box.locator("[data-suggestion=category] .suggestion-confidence")
                 .all_inner_texts()]
        assert shown == sorted(shown, reverse=True) and all(0 <= value <= 100 for value in shown)
        # the vague text is below the threshold: the model abstains and says so
        assert box.get_attribute("data-confident") == "false"
        assert "模型不确定，请人工选择" in box.locator("[data-suggestion=category]").inner_text()
        # the review queue has no category field: nothing to pick there
        assert box.locator(".suggestion-pick").count() == 0
        words = box.locator(".suggestion-words .suggestion-word").all_inner_texts()
        marks = box.locator("mark.suggestion-word").all_inner_texts()
        assert words and all(mark in VAGUE for mark in marks)
        assert all(any(mark in word or word in mark for word in words) for mark in marks)
        assert "受理时给出" not in box.inner_text()  # none was kept at intake: the newest model's, now
    # another street's complaint is out of scope, with or without the newest model's suggestion
    headers = {"Authorization": f"Bearer {bearer_token(app['server'].url, 'sg-street', PASSWORD)}"}
    other = sql(app["url"], "SELECT id FROM complaint WHERE street_code <> %s ORDER BY id LIMIT 1",
                (app["street"],))[0][0]
    for query in ("", "?or_newest=true"):
        answer = httpx.get(f"{app['server'].url}/complaints/{other}/suggestion{query}", headers=headers)
        assert answer.status_code == 404, answer.text


def test_a_ticket_shows_the_kept_suggestion_and_one_click_picks_its_party(app, browser):
    kept = app["kept"]
    with checked_page(browser) as page:
        browser.open_map(page, f"#v=19/{app['lat']:.6f}/{app['lon']:.6f}&l=street,compound,complaint")
        sign_in(page, "sg-street", PASSWORD)
        headers = {"Authorization": f"Bearer {bearer_token(app['server'].url, 'sg-street', PASSWORD)}"}
        # reopened (重新打开) and sent back by its unit (退单), it waits for the street office to dispatch it again
        for action, note in (("reopen", "居民反映问题复发"), ("return", "不属于本单位职责")):
            answer = httpx.post(f"{app['server'].url}/tickets/{app['ticket']}/transitions", headers=headers,
                                json={"action": action, "note": note})
            assert answer.status_code == 200, answer.text
        page.evaluate(f"() => window.gridgov.map.setView([{app['lat']}, {app['lon']}], 19, {{ animate: false }})")
        settle(page)
        page.mouse.click(*map_pixel(page, app["lon"], app["lat"]))
        if page.locator("#cluster-list").count():
            page.locator("#cluster-list li[data-complaint]").filter(has_text=f"#{app['ticket']} ").first.click()
        page.locator(f"#ticket[data-ticket='{app['ticket']}']").wait_for()
        box = page.locator("#ticket .suggestion")
        box.wait_for()
        assert box.get_attribute("data-model-version") == str(kept["model_version"])
        assert "受理时给出" in box.inner_text()
        assert box.get_attribute("data-confident") == "true"
        assert "模型不确定" not in box.locator("[data-suggestion=category]").inner_text()
        categories = box.locator("[data-suggestion=category] li")
        assert [categories.nth(i).get_attribute("data-value") for i in range(3)] == \
            [c["code"] for c in kept["categories"]]
        first = box.locator("[data-suggestion=category] li.first .suggestion-confidence").inner_text()
        assert first == f"{round(100 * kept['categories'][0]['confidence'])}%"
        # the words behind the first category are marked in the complaint's text
        marks = page.locator("#ticket-description mark.suggestion-word").all_inner_texts()
        description = page.locator("#ticket-description").inner_text()
        assert marks and all(mark in description for mark in marks)
        assert all(any(mark in word or word in mark for word in kept["category_words"]) for mark in marks)
        # one click picks a suggested party into the dispatch form
        party = next(p["party"] for p in kept["parties"] if p["party"] in ("property_company", "community")
                     or p["party"].startswith(("street_department:", "utility:")))
        # the receiving unit shows only while the action is 派遣
        page.select_option("#transition-action", "reject")
        assert page.locator("#transition-assignee-field").is_hidden()
        box.locator(f"[data-suggestion=party] button[data-pick='{party}']").click()
        assert page.locator("#transition-action").input_value() == "dispatch"
        assert page.locator("#transition-assignee-field").is_visible()
        chosen = page.locator("#transition-assignee").input_value()
        assert chosen
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1280, "height": 800})
        box.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENS / "dispatch-suggestion-desktop.png"))
        page.fill("#transition-note", "按派单建议派遣")
        page.click("#transition-submit")
        page.locator(f"#ticket[data-ticket='{app['ticket']}'][data-state='dispatched']").wait_for()
        kind, code, department, data = sql(app["url"], """
            SELECT t.assignee_kind, t.assignee_code, t.department,
                   (SELECT e.data FROM ticket_event e WHERE e.ticket_id = t.id AND e.action = 'dispatch'
                    ORDER BY e.id DESC LIMIT 1)
            FROM ticket t WHERE t.id = %s""", (app["ticket"],))[0]
        label = party.split(":", 1)
        assert kind == label[0]
        if kind == "property_company":
            assert code == str(app["company"])
        if len(label) > 1:
            assert department == label[1]
        assert data["suggested_by_model"] == kept["model_version"]  # the dispatch names the model behind it
        # on a phone the ticket's suggestion fits the width
        page.set_viewport_size({"width": 390, "height": 844})
        page.evaluate("() => window.gridgov.map.invalidateSize()")
        page.locator("#ticket .suggestion").scroll_into_view_if_needed()
        page.wait_for_timeout(300)  # tiles drawn for the picture only; nothing is asserted on them
        page.screenshot(path=str(SCREENS / "dispatch-suggestion-phone.png"))
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_without_a_trained_model_nothing_shows_and_nothing_fails(app, browser, city_db):
    sql(app["url"], "DELETE FROM complaint_suggestion")
    sql(app["url"], "DELETE FROM dispatch_model")
    with checked_page(browser) as page:
        browser.open_map(page)
        sign_in(page, "sg-street", PASSWORD)
        open_work_tab(page)
        line = page.locator(f"#review-queue li[data-complaint='{app['review']}']")
        with page.expect_response(lambda response: "/suggestion?or_newest=true" in response.url) as asked:
            line.click()
        assert asked.value.status == 204
        wait_until(page, "document.querySelector('#review-hint').textContent.includes('在地图上点击')")
        assert line.locator(".suggestion").count() == 0
        assert line.locator(".suggestion-holder").is_hidden()
