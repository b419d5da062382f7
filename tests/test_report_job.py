"""The street report as an HTTP job on the small city: asked by the street's name, watched by its progress, owned and
scoped, downloaded as PDF; the PDF's text is Chinese (no sentence in Latin letters) and holds the three rates,
equal to the API's for the same street and period."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time

import pytest
from conftest import LiveServer
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from fixtures.evaluation_inputs import generate_evaluation_inputs
from gis.access import auth
from gis.analytics.periods import parse_period
from gis.db.engine import with_driver

PERIOD = "2026H1"
PASSWORD = "report job password"
LATIN_WORD = re.compile(r"[A-Za-z]{3,}")
LATIN_RUN = re.compile(r"[A-Za-z]+[^\S\n]+[A-Za-z]+")

needs_pdf_tools = pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("pdftotext") is None,
    reason="needs Debian's chromium and poppler-utils (scripts/system-deps.sh installs them)")


@pytest.fixture(scope="module")
def world(city_db):
    generate_evaluation_inputs(city_db, seed=1)
    engine = create_engine(with_driver(city_db, "psycopg"))
    with engine.connect() as conn:
        streets = [dict(r) for r in conn.execute(text(
            "SELECT code, name FROM street WHERE valid_to IS NULL ORDER BY code LIMIT 2")).mappings()]
    engine.dispose()

    async def users():
        async_engine = create_async_engine(with_driver(city_db, "asyncpg"))
        async with async_engine.begin() as conn:
            await auth.create_user(conn, "rj-admin", PASSWORD, "admin", [], None)
            await auth.create_user(conn, "rj-street", PASSWORD, "street", [streets[0]["code"]], None)
            await auth.create_user(conn, "rj-other", PASSWORD, "street", [streets[1]["code"]], None)
            await auth.create_user(conn, "rj-grid", PASSWORD, "grid_worker", [streets[0]["code"] + "001001"], None)
        await async_engine.dispose()

    asyncio.run(users())
    server = LiveServer(city_db)
    with server.client() as http:
        tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in ("rj-admin", "rj-street", "rj-other", "rj-grid")}
    yield {"server": server, "tokens": tokens, "streets": streets}
    server.stop()


def client(world, name):
    return world["server"].client(headers={"Authorization": f"Bearer {world['tokens'][name]}"})


def wait_for(http, job_id: str) -> tuple[dict, list[dict]]:
    """Poll the job until it is finished; every answer seen on the way."""
    seen = []
    for _ in range(600):
        answer = http.get(f"/reports/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        seen.append(answer.json())
        if seen[-1]["state"] in ("done", "failed"):
            return seen[-1], seen
        time.sleep(0.5)
    raise AssertionError(f"the report job did not finish: {seen[-1]}")


def has_chinese(value: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in value)


@pytest.fixture(scope="module")
def report(world, tmp_path_factory):
    """The report of the first street, asked for by its name by that street's own office."""
    street = world["streets"][0]
    with client(world, "rj-street") as http:
        started = http.post("/reports/street", json={"street": street["name"], "period": PERIOD})
        assert started.status_code == 202, started.text
        job = started.json()
        assert job["street_code"] == street["code"] and job["state"] in ("queued", "running")
        # the page stays usable while the report is built
        assert http.get("/auth/me").status_code == 200
        done, seen = wait_for(http, job["id"])
        assert done["state"] == "done", done
        pdf = http.get(done["pdf"])
    folder = tmp_path_factory.mktemp("report")
    (folder / "report.pdf").write_bytes(pdf.content)
    return {"job": job, "done": done, "seen": seen, "pdf": pdf, "folder": folder}


@needs_pdf_tools
def test_the_job_reports_progress_and_gives_the_pdf(report):
    done, seen = report["done"], report["seen"]
    fractions = [answer["fraction"] for answer in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(0 <= f <= 1 for f in fractions)
    assert all(has_chinese(answer["progress_zh"]) and has_chinese(answer["state_zh"]) for answer in seen)
    assert done["progress_zh"] == "报告已生成，可以下载"
    assert report["pdf"].status_code == 200 and report["pdf"].content.startswith(b"%PDF")
    assert report["pdf"].headers["content-type"] == "application/pdf"


@needs_pdf_tools
def test_the_pdf_is_chinese_and_holds_the_rates_of_the_api(world, report):
    pdf = report["folder"] / "report.pdf"
    body = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "响应率" in body and "解决率" in body and "满意率" in body
    words = sorted(set(LATIN_WORD.findall(body)))
    assert not words, f"Latin words in the report: {words}"
    runs = LATIN_RUN.findall(body)
    assert not runs, f"Latin-letter phrases in the report: {runs}"
    assert "北京时间" in body and world["streets"][0]["name"] in body
    period = parse_period(PERIOD)
    with client(world, "rj-street") as http:
        answer = http.get("/tickets/rates", params={"level": "street", "unit": world["streets"][0]["code"],
                                                    "from": period.start.isoformat(), "to": period.end.isoformat()})
        row = answer.json()["rows"][0]
    lines = {line.split()[0]: line.split()[1:] for line in body.splitlines() if line.split()}
    for key, title in (("response_rate", "响应率"), ("resolution_rate", "解决率"), ("satisfaction_rate", "满意率")):
        assert row[key] is not None and 0 <= row[key] <= 1, (key, row[key])
        # the line of the rates table: title, rate, tickets in the numerator, tickets counted, rank
        assert lines[title][0] == f"{100 * row[key]:.1f}%", (title, lines[title], row[key])
    # the pages, for a person to look at (and the README's picture of the first one)
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(report["folder"] / "page")], check=True)
    assert len(list(report["folder"].glob("page*.png"))) >= 3


def test_jobs_have_an_owner_and_a_scope(world, report):
    job_id = report["job"]["id"]
    with client(world, "rj-other") as other:
        assert other.get(f"/reports/jobs/{job_id}").status_code == 404
        assert other.get(f"/reports/jobs/{job_id}/report.pdf").status_code == 404
        # a street office asks only for its own street: another one is as if it did not exist
        refused = other.post("/reports/street", json={"street": world["streets"][0]["code"]})
        assert refused.status_code == 404 and has_chinese(refused.json()["detail"])
    with client(world, "rj-admin") as admin:
        assert admin.get(f"/reports/jobs/{job_id}").status_code == 200
        unknown = admin.post("/reports/street", json={"street": "没有这个街道"})
        assert unknown.status_code == 404 and "没有找到街道" in unknown.json()["detail"]
        bad = admin.post("/reports/street", json={"street": world["streets"][0]["code"], "period": "soon"})
        assert bad.status_code == 400 and has_chinese(bad.json()["detail"])
        assert admin.get("/reports/jobs/no-such-job").status_code == 404
    with client(world, "rj-grid") as grid:
        assert grid.post("/reports/street", json={"street": world["streets"][0]["code"]}).status_code == 403
    with world["server"].client() as public:
        assert public.post("/reports/street", json={"street": world["streets"][0]["code"]}).status_code == 401
        assert public.get(f"/reports/jobs/{job_id}").status_code == 401
