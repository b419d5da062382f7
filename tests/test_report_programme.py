"""The street report's planner section on the small city: each programme figure of the street as of the period's
last day, with its target, the gap and whether it is met, reads in the PDF exactly as /analytics/programme gives it
for that street and day — also after a takeover dated after the period, which moves today's figures but not the
report's. The section's pages are kept as PNG in test-artifacts/ to look at."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import LiveServer
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from gis.access import auth
from gis.analytics.periods import parse_period
from gis.analytics.report import programme_day, programme_gap_zh, programme_state_zh, programme_value_zh
from gis.db.engine import with_driver
from gis.registry.history import today

ROOT = Path(__file__).resolve().parent.parent
PERIOD = "2026H1"
PASSWORD = "report programme password"
LATIN_WORD = re.compile(r"[A-Za-z]{3,}")

needs_pdf_tools = pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("pdftotext") is None,
    reason="needs Debian's chromium and poppler-utils (scripts/system-deps.sh installs them)")


def _day_zh(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


@pytest.fixture(scope="module")
def world(city_db):
    """An administrator; an unmanaged old estate taken over the day after the period (so today's figures of its
    street differ from the period's); the street's report built as a job and its PDF's text."""
    engine = create_engine(with_driver(city_db, "psycopg"))
    with engine.connect() as conn:
        compound = conn.execute(text(
            "SELECT code FROM compound WHERE valid_to IS NULL AND is_old_estate AND management_mode = 'none' "
            "ORDER BY code LIMIT 1")).scalar_one()
        company = conn.execute(text(
            "SELECT credit_code FROM property_company WHERE NOT is_community_led AND credit_code IS NOT NULL "
            "ORDER BY id LIMIT 1")).scalar_one()
    engine.dispose()

    async def admin():
        async_engine = create_async_engine(with_driver(city_db, "asyncpg"))
        async with async_engine.begin() as conn:
            await auth.create_user(conn, "rp-admin", PASSWORD, "admin", [], None)
        await async_engine.dispose()

    asyncio.run(admin())
    period = parse_period(PERIOD)
    day = programme_day(period)
    taken_on = day + timedelta(days=1)
    assert taken_on <= today(), "the test needs a period that ended before today"
    server = LiveServer(city_db)
    with server.client() as http:
        token = http.post("/auth/login", json={"username": "rp-admin", "password": PASSWORD}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        taken = http.post(f"/registry/compounds/{compound}/takeover", headers=headers, json={
            "company_credit_code": company, "on_date": taken_on.isoformat(), "reason": "测试：期末之后接管"})
        assert taken.status_code == 200, taken.text
        street = compound[:9]
        started = http.post("/reports/street", headers=headers, json={"street": street, "period": PERIOD})
        assert started.status_code == 202, started.text
        job = started.json()
        for _ in range(600):
            done = http.get(f"/reports/jobs/{job['id']}", headers=headers).json()
            if done["state"] in ("done", "failed"):
                break
            time.sleep(0.5)
        assert done["state"] == "done", done
        pdf = http.get(done["pdf"], headers=headers)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

        def api(as_of: date) -> list[dict]:
            answer = http.get("/analytics/programme", headers=headers,
                              params={"level": "street", "code": street, "as_of": as_of.isoformat()})
            assert answer.status_code == 200, answer.text
            return answer.json()["rows"]

        yield {"street": street, "day": day, "pdf": pdf.content, "at_day": api(day), "now": api(today())}
    server.stop()


@pytest.fixture(scope="module")
def body(world, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("report-programme")
    (folder / "report.pdf").write_bytes(world["pdf"])
    return subprocess.run(["pdftotext", "-layout", str(folder / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout


def _flat(value: str) -> str:
    return "".join(value.split())


def _table_lines(body: str) -> dict[str, list[str]]:
    """{figure title: the words after it} of the section's table: the first line starting with each title."""
    section = body[body.index("五、规划指标完成情况"):body.index("六、物业企业红黑榜")]
    lines: dict[str, list[str]] = {}
    for line in section.splitlines():
        words = line.split()
        if words and words[0] not in lines:
            lines[words[0]] = words[1:]
    return lines


@needs_pdf_tools
def test_each_figure_reads_as_the_api_gives_it_for_the_street_and_day(world, body):
    assert f"截至{_day_zh(world['day'])}" in body
    lines = _table_lines(body)
    for row in world["at_day"]:
        assert row["title"] in lines, (row["title"], sorted(lines))
        # value, numerator / denominator with the unit, target, gap, state (the PDF's text may lose the space
        # between a number and its unit)
        words = lines[row["title"]]
        after = "".join(words)
        if row["value"] is None:
            assert words[0] == "无数据", (row["title"], words)
        elif row["kind"] == "share":
            assert words[0] == f"{100 * row['value']:.1f}%", (row["title"], words, row["value"])
        else:
            assert words[0] in (f"{row['value']:,}", f"{row['value']:,}{row['unit_label']}"), (row["title"], words)
        assert after.startswith(_flat(programme_value_zh(row))), (row["title"], words, row["value"])
        assert _flat(f"{row['numerator']:,.0f} / {row['denominator']:,.0f} {row['unit_label']}") in after, words
        assert words[-1] == programme_state_zh(row), (row["title"], words, row["met"])
        if row["target"] is not None:
            assert _flat(programme_value_zh(row, row["target"]) + programme_gap_zh(row)) in after, words


@needs_pdf_tools
def test_the_figures_are_the_periods_not_todays(world, body):
    at_day = {row["key"]: row for row in world["at_day"]}
    now = {row["key"]: row for row in world["now"]}
    # the takeover after the period closed a gap today; the report still counts it
    assert now["gap_compounds"]["value"] == at_day["gap_compounds"]["value"] - 1
    lines = _table_lines(body)
    title = at_day["gap_compounds"]["title"]
    gap = at_day["gap_compounds"]
    assert lines[title][0] in (str(gap["value"]), _flat(programme_value_zh(gap)))


@needs_pdf_tools
def test_the_section_is_chinese_with_its_trend_chart(world, body):
    section = body[body.index("五、规划指标完成情况"):body.index("六、物业企业红黑榜")]
    assert not LATIN_WORD.findall(section), LATIN_WORD.findall(section)
    assert "目标来源" in section and ("已达标" in section or "未达标" in section)
    assert "本节列示规划指标" not in body  # the placeholder is gone
    # the pages, to look at
    target = ROOT / "test-artifacts"
    target.mkdir(parents=True, exist_ok=True)
    pdf = target / "report-programme.pdf"
    pdf.write_bytes(world["pdf"])
    pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout.split("\f")
    first = next(i for i, page in enumerate(pages) if "五、规划指标完成情况" in page) + 1
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", str(first), "-l", str(first + 1), str(pdf),
                    str(target / "report-programme")], check=True)
    assert list(target.glob("report-programme-*.png"))


def test_the_day_is_the_periods_last_or_today():
    assert programme_day(parse_period("2025H2")) == date(2025, 12, 31)
    assert programme_day(parse_period("2025-02")) == date(2025, 2, 28)
    assert programme_day(parse_period(str(today().year))) == today()  # a year not over yet


def test_values_gaps_and_states_in_chinese():
    share = {"kind": "share", "unit_label": "个", "value": 0.6543, "target": 0.7, "gap": 0.0457, "met": False}
    assert (programme_value_zh(share), programme_gap_zh(share), programme_state_zh(share)) == (
        "65.4%", "差 4.6 个百分点", "未达标")
    over = {**share, "value": 0.75, "gap": -0.05, "met": True}
    assert (programme_gap_zh(over), programme_state_zh(over)) == ("超出 5.0 个百分点", "已达标")
    exact = {**share, "value": 1.0, "target": 1.0, "gap": 0.0, "met": True}
    assert (programme_value_zh(exact, exact["target"]), programme_gap_zh(exact)) == ("100.0%", "恰好达到目标")
    count = {"kind": "count", "unit_label": "人", "value": 1234, "target": None, "gap": None, "met": None}
    assert (programme_value_zh(count), programme_gap_zh(count), programme_state_zh(count)) == (
        "1,234 人", "–", "未设目标")
    empty = {**share, "value": None, "gap": None, "met": None}
    assert (programme_value_zh(empty), programme_gap_zh(empty), programme_state_zh(empty)) == ("无数据", "–", "无数据")
