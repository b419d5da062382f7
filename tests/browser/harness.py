"""Driving Debian's Chromium with Playwright against the live app, recording every request the page makes."""

from __future__ import annotations

import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import BrowserContext, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VIEWPORT = {"width": 1400, "height": 860}


class Browser:
    """One headless Chromium with a fresh profile; pages record requests and script errors."""

    def __init__(self, app_url: str, playwright=None):
        self.app_url = app_url
        self._owns_playwright = playwright is None
        self.profile = tempfile.mkdtemp(prefix="gridgov-chromium-")
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.failed_responses: list[str] = []
        self._playwright = playwright or sync_playwright().start()
        self.context: BrowserContext = self._playwright.chromium.launch_persistent_context(
            self.profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, viewport=VIEWPORT,
            locale="zh-CN", timezone_id="Asia/Shanghai",
        )
        self.context.on("request", lambda request: self.requests.append(request.url))
        # a console "Failed to load resource" names no address; these say which request it was
        self.context.on("response", lambda response: response.status >= 400 and self.failed_responses.append(
            f"{response.request.method} {response.url} → {response.status}"))

    def new_page(self) -> Page:
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        return page

    def open_map(self, page: Page, fragment: str = "") -> None:
        page.goto(f"{self.app_url}/map{fragment}")
        wait_until(page, "window.gridgov && window.gridgov.ready === true")
        settle(page)

    def foreign_requests(self) -> list[str]:
        """Requests that went anywhere but the app's own address (data: and blob: URLs stay in the page)."""
        own = urlsplit(self.app_url)
        foreign = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob", "about"):
                continue
            if (parts.scheme, parts.netloc) != (own.scheme, own.netloc):
                foreign.append(url)
        return foreign

    def sibling(self, app_url: str) -> "Browser":
        """Another browser with its own profile, for another app, in the same Playwright session."""
        return Browser(app_url, self._playwright)

    def close(self) -> None:
        self.context.close()
        if self._owns_playwright:
            self._playwright.stop()
        shutil.rmtree(self.profile, ignore_errors=True)


def wait_until(page: Page, expression: str, timeout_ms: int = 20_000) -> None:
    """Poll a JavaScript expression until it is true. (Playwright's wait_for_function evaluates strings with
    eval inside the page, which the app's Content-Security-Policy rightly forbids; evaluate() does not.)"""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout_ms} ms: {expression}")
        page.wait_for_timeout(50)


def settle(page: Page) -> None:
    """Wait until the map has no fetch in flight and its last redraw finished."""
    idle = "window.gridgov.loading === 0 && !window.gridgov.pending"
    wait_until(page, idle)
    page.wait_for_timeout(150)
    wait_until(page, idle)


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def click_map_centre(page: Page) -> None:
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def map_pixel(page: Page, lon: float, lat: float) -> tuple[float, float]:
    """Page coordinates of a WGS-84 point on the map."""
    point = page.evaluate("([lat, lon]) => { const p = window.gridgov.map.latLngToContainerPoint([lat, lon]);"
                          " return [p.x, p.y]; }", [lat, lon])
    box = page.locator("#map").bounding_box()
    return box["x"] + point[0], box["y"] + point[1]


@contextmanager
def checked_page(browser: Browser):
    """A new page of `browser` that, when closed, must have sent nothing off the app's origin and met no script
    error."""
    page = browser.new_page()
    yield page
    foreign = browser.foreign_requests()
    errors = list(browser.errors)
    failed = list(browser.failed_responses)
    browser.errors.clear()
    browser.failed_responses.clear()
    page.close()
    assert foreign == [], f"requests left the app: {foreign[:5]}"
    assert errors == [], f"script errors in the page: {errors[:5]}; failed requests: {failed[:5]}"


def sign_in(page: Page, username: str, password: str) -> None:
    """Signs in through the page's own form and waits until the page has settled."""
    page.fill("#login-user", username)
    page.fill("#login-password", password)
    page.click("#login-button")
    page.wait_for_selector("#whoami:not([hidden])")
    settle(page)


def bearer_token(base_url: str, username: str, password: str) -> str:
    """A session token for `username`, through the API's sign-in."""
    response = httpx.post(f"{base_url}/auth/login", json={"username": username, "password": password})
    response.raise_for_status()
    return response.json()["access_token"]
