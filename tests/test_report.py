"""`gridgov report STREET --period ...` on the small city: HTML and PDF with maps and charts; the first page is
kept as test-artifacts/report.png to read (the README's docs/img/report.png is copied from it by hand, so a test
run never changes the tree)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from fixtures.evaluation_inputs import generate_evaluation_inputs
from gis.db.engine import with_driver

ROOT = Path(__file__).resolve().parent.parent
PERIOD = "2026H1"


@pytest.fixture(scope="module")
def street(city_db) -> dict:
    generate_evaluation_inputs(city_db, seed=1)
    engine = create_engine(with_driver(city_db, "psycopg"))
    with engine.connect() as conn:
        row = conn.execute(text("SELECT code, name FROM street WHERE valid_to IS NULL ORDER BY code LIMIT 1")).one()
        communities = list(conn.execute(text("SELECT name FROM community WHERE street_code = :s"),
                                        {"s": row.code}).scalars())
    engine.dispose()
    return {"code": row.code, "name": row.name, "communities": communities}


def run_cli(city_db: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from cli.main import app; app()", *args],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "GRIDGOV_DATABASE_URL": city_db}, timeout=300)


@pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("pdftoppm") is None,
                    reason="needs Debian's chromium and poppler-utils (scripts/system-deps.sh installs them)")
def test_street_report_html_and_pdf(city_db, street, tmp_path):
    result = run_cli(city_db, "report", street["code"], "--period", PERIOD, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    html = (tmp_path / f"report-{street['code']}-{PERIOD}.html").read_text(encoding="utf-8")
    pdf = tmp_path / f"report-{street['code']}-{PERIOD}.pdf"
    assert street["name"] in html
    assert all(name in html for name in street["communities"])
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 5 and all(len(image) > 5_000 for image in images)  # two maps, three charts
    assert "红黑榜" in html and "http://" not in html and "https://" not in html
    assert pdf.read_bytes().startswith(b"%PDF")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert int(re.search(r"Pages:\s+(\d+)", info)[1]) >= 2
    # The first page, to look at.
    target = ROOT / "test-artifacts"
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                    str(target / "report")], check=True)
    assert (target / "report.png").stat().st_size > 20_000


def test_report_of_an_unknown_street_fails_clearly(city_db, tmp_path):
    result = run_cli(city_db, "report", "999999999", "--period", PERIOD, "--out", str(tmp_path), "--no-pdf")
    assert result.returncode == 1
    assert "no current street office" in result.stderr
    result = run_cli(city_db, "report", "370902001", "--period", "soon", "--out", str(tmp_path), "--no-pdf")
    assert result.returncode == 1 and "not understood" in result.stderr
