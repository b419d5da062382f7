"""The planner's offline map from the map page: the planner tab offers it once signed in and the saved file is the
export. In a module of its own: the offline-map module keeps a sync Playwright running for its sealed context, and
this test starts its own browser and an event loop for the user, which cannot share a thread with that one."""

from __future__ import annotations

from pathlib import Path

from gis.reports import map_export
from tests.browser.harness import wait_until
from tests.users import create_users


def test_a_planner_downloads_the_file_from_the_map_page(live_app, city_db):
    """The planner tab offers the offline map of any street or district once signed in; the file it saves is the
    export (the public sees no such box)."""
    from tests.browser.harness import Browser, checked_page, sign_in

    create_users(city_db, "map export planner password", [("mx-map-planner", "planner", [])])
    browser = Browser(live_app.url)
    try:
        with checked_page(browser) as page:
            browser.open_map(page)
            page.click('[data-tab="planner"]')
            assert not page.locator("#map-export-box").is_visible()
            sign_in(page, "mx-map-planner", "map export planner password")
            page.click('[data-tab="planner"]')
            page.wait_for_selector("#map-export-area option", state="attached")
            options = page.evaluate("[...document.querySelectorAll('#map-export-area option')].map(o => o.value)")
            assert any(o.startswith("street:") for o in options) and any(o.startswith("district:") for o in options)
            street = next(o for o in options if o.startswith("street:"))
            page.select_option("#map-export-area", street)
            with page.expect_download() as download_info:
                page.click("#map-export-start")
            download = download_info.value
            code = street.split(":")[1]
            assert download.suggested_filename.startswith(f"map-{code}-")
            saved = Path(download.path()).read_text(encoding="utf-8")
            assert "网格治理地图" in saved and not map_export.external_references(saved)
            wait_until(page, "document.querySelector('#map-export-note').textContent.includes('已下载')")
    finally:
        browser.close()
