"""The field app on a phone (issue 16): Debian's Chromium at 390 × 844 with the CPU slowed 4× (CDP
`Emulation.setCPUThrottlingRate`, a mid-range phone) and a slow network (`Network.emulateNetworkConditions`:
150 ms round trip, 1.6 Mbit/s down, 750 kbit/s up), signed in as the demo grid worker (the first grid's worker)
on the demo city and on the city fixture.

Figures, with their ratio to the aim (first usable view under 3 s, main-thread work per pan p95 under 100 ms):

- first usable view: from navigation start to the map's first view ready (`gridgov.readyAt`), a returning worker
  (signed in, the view of their own grids) in a fresh browser: no HTTP cache, no service worker (median of 3);
  then the same page opened again with the service worker and the cache (median of 3; the service worker's own
  fetches are not slowed by the page's network profile, so this one is a lower bound);
- main-thread work per pan: CDP `Performance.getMetrics` before and after each of 20 pans (each pan waits for the
  redraw, the network, and two frames): the sum of main-thread task durations, and its parts — scripting, style
  and layout, and the rest (painting, compositing, parsing, GC); median, p95 and max. Measured on the field view
  (the map as it opens for the worker after sign-in, fitted to their grids) and on the issue's worst case
  (every layer on at zoom 15 over the worker's grids). On the field view a Chromium trace of a few more pans
  says where the rest goes (compositor commits, paint, style and layout, script entry points).

The demo city is loaded into its own database beside the city fixture on first use (kept while size and seed
match). `python -m benchmarks.bench_phone [--only demo|city] [city database URL]` runs it alone.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg

from benchmarks.bench_map import _App, _percentile
from gis.db.engine import libpq_url

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 390, "height": 844}
CPU_SLOWDOWN = 4
NETWORK = {"offline": False, "latency": 150, "downloadThroughput": 1_600_000 / 8, "uploadThroughput": 750_000 / 8}
FIRST_VIEW_AIM_MS = 3000.0
PAN_AIM_MS = 100.0
PANS = 20
FIRST_VIEW_RUNS = 3
DEMO_DB = "gridgov_bench_demo"
DEMO_SEED = 7
USERNAME = "bench_phone_worker"
PASSWORD = "bench-phone-worker-password"
ALL_LAYERS = "street,community,grid,micro_grid,compound,building,party,complaint"
# A walk around the worker's area: five steps east, south, west and north of 150 px each (a 750 px square).
OFFSETS = ([150, 0],) * 5 + ([0, 150],) * 5 + ([-150, 0],) * 5 + ([0, -150],) * 5

# One pan: the metrics before, the move, its redraw and network, two frames and a quiet moment, the metrics after.
_PAN_JS = """async ([dx, dy]) => {
    const S = window.gridgov;
    const drawn = S.nextDraw();
    S.map.panBy([dx, dy], {animate: false});
    await drawn;
    const idle = () => S.loading === 0 && !S.pending;
    while (!idle()) await new Promise((resolve) => setTimeout(resolve, 25));
    for (let i = 0; i < 2; i++) await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 250));
    return true;
}"""


def demo_database(city_url: str) -> str:
    """URL of a database beside the city fixture holding the demo city, loaded on first use."""
    from fixtures.loader import load_city, loaded_fixture
    from gis.db.migrate import upgrade

    parts = urlsplit(city_url)
    url = urlunsplit(parts._replace(path=f"/{DEMO_DB}"))
    with psycopg.connect(libpq_url(city_url), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DEMO_DB}"')
    upgrade(url)
    if loaded_fixture(url) != ("demo", DEMO_SEED):
        load_city(url, "demo", seed=DEMO_SEED, progress=False)
    return url


def ensure_worker(url: str) -> None:
    """The benchmark's grid worker: the demo grid worker's scope (the first grid), with a known password."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from gis.access import auth
    from gis.db.engine import with_driver

    async def create() -> None:
        engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                if USERNAME in {u["username"] for u in await auth.list_users(conn)}:
                    return
                grid = (await conn.exec_driver_sql("SELECT min(code) FROM grid WHERE valid_to IS NULL")).scalar_one()
                if grid is None:
                    raise SystemExit(f"{url.rsplit('/', 1)[-1]} holds no grids: load the city fixture first "
                                     "(make bench, or python -m benchmarks.run_all bench_load)")
                await auth.create_user(conn, USERNAME, PASSWORD, "grid_worker", [grid])
        finally:
            await engine.dispose()

    asyncio.run(create())


def _phone(browser, session: dict | None = None):
    """A fresh phone-sized context (no cache, no service worker) and its page, slowed; a session is put in
    sessionStorage before the page's own scripts run."""
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    if session:
        lines = "".join(f"sessionStorage.setItem({key!r}, {value!r});" for key, value in session.items())
        context.add_init_script(lines)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", NETWORK)
    cdp.send("Performance.enable")
    return context, page, cdp


def _wait(page, expression: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout_s:.0f} s: {expression}")
        page.wait_for_timeout(20)


def _settled(page) -> None:
    _wait(page, "window.gridgov && window.gridgov.ready")
    for _ in range(2):
        _wait(page, "window.gridgov.loading === 0 && !window.gridgov.pending")
        page.wait_for_timeout(300)


def _metrics(cdp) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def _pans(page, cdp) -> dict[str, list[float]]:
    """Main-thread milliseconds of each pan: all tasks, scripting, style and layout, the rest; and how many
    GeoJSON layer fetches the pans made."""
    parts: dict[str, list[float]] = {"task": [], "script": [], "style_layout": [], "other": [], "fetches": []}
    fetched: list[str] = []
    page.on("request", lambda request: "/layers/" in request.url and fetched.append(request.url))
    for n in range(PANS):
        before = _metrics(cdp)
        page.evaluate(_PAN_JS, OFFSETS[n % len(OFFSETS)])
        after = _metrics(cdp)
        spent = {name: (after.get(name, 0.0) - before.get(name, 0.0)) * 1000 for name in
                 ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")}
        parts["task"].append(spent["TaskDuration"])
        parts["script"].append(spent["ScriptDuration"])
        parts["style_layout"].append(spent["LayoutDuration"] + spent["RecalcStyleDuration"])
        parts["other"].append(spent["TaskDuration"] - spent["ScriptDuration"] - spent["LayoutDuration"]
                              - spent["RecalcStyleDuration"])
    parts["fetches"] = [float(len(fetched))]
    return parts


TRACE_GROUPS = {
    "compositor commit": ("Commit",),
    "paint (pre-paint, layerize, paint)": ("PrePaint", "Layerize", "Paint"),
    "style and layout": ("UpdateLayoutTree", "Layout"),
    "script entry (timers, frames, callbacks)": ("TimerFire", "FireAnimationFrame", "FunctionCall"),
}
TRACED_PANS = 6


def _trace_breakdown(browser, page) -> str:
    """Where the main thread's time goes over a few more pans, from a Chromium trace: milliseconds per pan of
    all tasks and of the named groups (inclusive times of the renderer main thread's events)."""
    import json

    browser.start_tracing(page=page, categories=["devtools.timeline", "disabled-by-default-devtools.timeline"])
    for n in range(TRACED_PANS):
        page.evaluate(_PAN_JS, OFFSETS[n % len(OFFSETS)])
    trace = json.loads(browser.stop_tracing())
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    main = {(e["pid"], e["tid"]) for e in events
            if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"}
    spent: dict[str, float] = {}
    for event in events:
        if event.get("ph") == "X" and "dur" in event and (event.get("pid"), event.get("tid")) in main:
            spent[event["name"]] = spent.get(event["name"], 0.0) + event["dur"] / 1000 / TRACED_PANS
    parts = [f"all tasks {spent.get('RunTask', 0.0):.0f} ms"] + [
        f"{label} {sum(spent.get(name, 0.0) for name in names):.0f} ms" for label, names in TRACE_GROUPS.items()]
    return f"traced per pan over {TRACED_PANS} more pans: " + ", ".join(parts)


def _sign_in(page) -> None:
    toggle = page.locator("#account-toggle")
    if toggle.count() and toggle.is_visible() and not page.locator("#login-user").is_visible():
        toggle.click()
    page.fill("#login-user", USERNAME)
    page.fill("#login-password", PASSWORD)
    page.click("#login-button")
    _wait(page, "sessionStorage.getItem('gridgov.token')")


def _pan_rows(label: str, view: str, parts: dict[str, list[float]], extra: str) -> list[dict]:
    task = parts["task"]
    p50, p95 = statistics.median(task), _percentile(task, 0.95)
    shares = ", ".join(f"{name} median {statistics.median(values):.0f} ms" for name, values in
                       (("scripting", parts["script"]), ("style+layout", parts["style_layout"]),
                        ("paint, compositor commit and the rest", parts["other"])))
    return [{"area": "phone", "metric": f"{label}: main-thread work per pan p95, {view}", "value": round(p95),
             "unit": "ms", "note": f"{p95 / PAN_AIM_MS:.2f} of the 100 ms aim; median {p50:.0f}, max "
                                   f"{max(task):.0f} ms over {len(task)} pans; {shares}; "
                                   f"{parts['fetches'][0]:.0f} layer fetches in the {len(task)} pans; {extra}"}]


def measure(label: str, url: str, browser) -> list[dict]:
    """Every figure on one city (its benchmark worker made beforehand, outside Playwright's event loop)."""
    app = _App(url)
    rows: list[dict] = []
    try:
        # the field view: signed in through the page, the map fitted to the worker's grids
        context, page, cdp = _phone(browser)
        page.goto(f"{app.url}/map")
        _settled(page)
        _sign_in(page)
        _wait(page, "document.body.dataset.ownArea !== undefined || !document.querySelector('#field-box')", 60)
        _settled(page)
        own_view = page.evaluate("location.hash")
        features = page.evaluate("""(() => { let n = 0; const L = window.gridgov.layers;
            for (const name of Object.keys(L)) {
                const group = L[name].group;
                if (group && group.getLayers && window.gridgov.map.hasLayer(group)) n += group.getLayers().length;
            }
            return n; })()""")
        parts = _pans(page, cdp)
        breakdown = _trace_breakdown(browser, page)
        rows += _pan_rows(label, "field view", parts, f"{features} features drawn, view {own_view}; {breakdown}")
        session = page.evaluate("""(() => { const out = {};
            for (const key of ['gridgov.token', 'gridgov.role', 'gridgov.username', 'gridgov.me'])
                out[key] = sessionStorage.getItem(key);
            return out; })()""")
        context.close()

        # the worst case: every layer on at zoom 15 over the worker's grids
        centre = own_view.split("&")[0].split("=", 1)[1].split("/")[1:3] if "v=" in own_view else None
        if centre:
            context, page, cdp = _phone(browser, session)
            page.goto(f"{app.url}/map#v=15/{centre[0]}/{centre[1]}&l={ALL_LAYERS}")
            _settled(page)
            rows += _pan_rows(label, "all layers at zoom 15", _pans(page, cdp), "the issue's baseline case")
            context.close()

        # first usable view of a returning worker: cold, then again with the service worker and the cache
        cold, warm = [], []
        for _ in range(FIRST_VIEW_RUNS):
            context, page, cdp = _phone(browser, session)
            page.goto(f"{app.url}/map{own_view}")
            _settled(page)
            cold.append(page.evaluate("window.gridgov.readyAt"))
            _wait(page, "window.gridgov.offline && window.gridgov.offline.controlled", 120)
            page.reload()
            _settled(page)
            warm.append(page.evaluate("window.gridgov.readyAt"))
            context.close()
        for name, values in (("cold: no cache, no service worker", cold), ("again: service worker and cache", warm)):
            median = statistics.median(values)
            rows.append({"area": "phone", "metric": f"{label}: first usable view, {name}", "value": round(median),
                         "unit": "ms", "note": f"{median / FIRST_VIEW_AIM_MS:.2f} of the 3 s aim; worst "
                                               f"{max(values):.0f} ms of {len(values)}"})
    finally:
        app.stop()
    return rows


def _with_load(rows: list[dict]) -> list[dict]:
    """Each note ends with the machine's load: task durations are wall time, so other work on the machine's
    cores lengthens them."""
    one, five, _ = os.getloadavg()
    for row in rows:
        row["note"] += f"; load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} cores"
    return rows


def run(city_url: str, only: str | None = None) -> list[dict]:
    """Rows for the demo city and the city fixture (or `only` one of them: "demo" or "city"), throttled as a
    mid-range phone on a slow network."""
    from playwright.sync_api import sync_playwright

    targets = []
    if only in (None, "demo"):
        targets.append(("demo city", demo_database(city_url)))
    if only in (None, "city"):
        targets.append(("city fixture", city_url))
    for _, url in targets:
        ensure_worker(url)
    rows: list[dict] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for label, url in targets:
                rows += _with_load(measure(label, url, browser))
        finally:
            browser.close()
    return rows


if __name__ == "__main__":
    from benchmarks.run_all import city_database

    arguments = sys.argv[1:]
    chosen = None
    if arguments[:1] == ["--only"]:
        chosen, arguments = arguments[1], arguments[2:]
    for row in run(arguments[0] if arguments else city_database(), chosen):
        print(f"{row['metric']}: {row['value']} {row['unit']} — {row['note']}")
