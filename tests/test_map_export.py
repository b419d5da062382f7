"""The map to hand on (gis/reports/map_export.py) on the small city: one HTML file with Leaflet inlined and no
reference off the file, the layers' contents equal to the database's own counts (the gaps to the programme's
and to an SQL oracle of the rule), public-grade data only, Beijing time; `gridgov map export` and
GET /reports/map.html with their scope."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import LiveServer
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from gis.access import auth
from gis.analytics import programme
from gis.db.engine import with_driver
from gis.errors import NotFound, SetupError
from gis.reports import map_export

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "map export password"

# Written here, independently of the module's own guard: a tag that loads a URL with a host (http:, https: or
# protocol-relative), a CSS url() or @import of one.
FETCHING = re.compile(r"""<(script|link|img|iframe|source|embed|object|video|audio)\b[^>]*\b(src|href)\s*=\s*"""
                      r"""["']?\s*(https?:)?//""", re.IGNORECASE)
CSS_URL = re.compile(r"""url\(\s*["']?\s*(https?:)?//|@import\s""", re.IGNORECASE)
RELATIVE_FILE = re.compile(r"""<(script|link|img)\b[^>]*\b(src|href)\s*=\s*["']?(?!data:|#)[^"'\s>]+""", re.I)


def occurrences(document: str, words: str) -> int:
    """How often `words` stand in the file, as text or inside JSON with its non-ASCII characters escaped."""
    return document.count(words) + document.count(json.dumps(words)[1:-1])


@pytest.fixture(scope="module")
def engine(city_db):
    engine = create_engine(with_driver(city_db, "psycopg"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def streets(engine):
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT code FROM street WHERE valid_to IS NULL ORDER BY code")).scalars())


@pytest.fixture(scope="module")
def street_map(engine, streets):
    with engine.connect() as conn:
        return map_export.build_map(conn, "street", streets[0])


def test_the_file_references_nothing_off_itself(street_map):
    document = street_map.html
    assert not FETCHING.findall(document)
    assert not CSS_URL.findall(document)
    assert not RELATIVE_FILE.findall(document), "a tag loads a file beside the page, which another machine lacks"
    assert "cdn." not in document and "jsdelivr" not in document and "cloudflare" not in document
    assert "sourceMappingURL" not in document
    assert "fontawesome" not in document.lower() and "glyphicons" not in document.lower()
    # Leaflet itself and its CSS images are in the file
    assert "Leaflet 1.9.4" in document or "\"1.9.4\"" in document
    assert "data:image/png;base64," in document


def test_the_layers_hold_what_the_database_holds(engine, streets, street_map):
    with engine.connect() as conn:
        compounds = conn.execute(text("SELECT count(*) FROM compound WHERE valid_to IS NULL AND community_code "
                                      "LIKE :p"), {"p": streets[0] + "%"}).scalar_one()
        micro_grids = conn.execute(text("SELECT count(*) FROM micro_grid WHERE valid_to IS NULL AND code LIKE :p"),
                                   {"p": streets[0] + "%"}).scalar_one()
        # the rule written out: no management at all, or an old estate that no company or community manages
        gaps = conn.execute(text("""
            SELECT count(*) FROM compound WHERE valid_to IS NULL AND community_code LIKE :p
            AND (management_mode = 'none' OR (is_old_estate AND management_mode NOT IN
                 ('professional', 'community_led', 'entrusted')))"""), {"p": streets[0] + "%"}).scalar_one()
        figure = programme.gaps(conn, "street", streets[0])
    counts = street_map.counts
    assert compounds > 10 and counts["compounds"] == compounds
    assert counts["micro_grids"] == micro_grids
    assert counts["gaps"] == gaps == figure.meta["gaps"], "the map's gaps are the programme's gaps"
    assert gaps > 0
    document = street_map.html
    assert occurrences(document, "物业管理模式：") == compounds  # one tooltip per compound feature
    assert occurrences(document, "空白原因：") == gaps
    assert occurrences(document, map_export.GAP_DEFINITION_ZH) == 1  # in the legend
    for title in map_export.LAYER_TITLES.values():
        assert f'data-layer="{title}"' in document and f'"{title}"' in document


def test_title_and_time_in_chinese_and_beijing_time(engine, streets):
    made_at = datetime(2026, 3, 1, 1, 30, tzinfo=timezone.utc)  # 09:30 in Beijing
    with engine.connect() as conn:
        made = map_export.build_map(conn, "street", streets[0], "2025", now=made_at)
        name = conn.execute(text("SELECT name FROM street WHERE code = :c AND valid_to IS NULL"),
                            {"c": streets[0]}).scalar_one()
    assert "生成时间：2026-03-01 09:30（北京时间）" in made.html
    assert "冷热点统计期间：2025-01-01 至 2025-12-31" in made.html
    assert f"{name} 网格治理地图" in made.html and '<html lang="zh-CN">' in made.html
    assert made.filename == f"map-{streets[0]}-20260301.html"


def test_no_personal_data_in_the_file(engine, streets, street_map):
    with engine.connect() as conn:
        secrets = set(conn.execute(text("""
            SELECT reporter_phone FROM complaint UNION SELECT reporter_name FROM complaint
            UNION SELECT secretary_phone FROM party_organisation UNION SELECT secretary_name FROM party_organisation
            UNION SELECT phone FROM grid_worker UNION SELECT contact_phone FROM property_company""")).scalars())
        texts = list(conn.execute(text("SELECT description FROM complaint WHERE length(description) > 12 "
                                       "AND street_code = :s LIMIT 200"), {"s": streets[0]}).scalars())
    secrets.discard(None)
    assert len(secrets) > 50 and texts
    document = street_map.html
    assert not [s for s in secrets if len(s) >= 3 and s in document]
    assert not [t for t in texts if t in document]


def test_the_district_map_holds_every_street(engine, streets):
    with engine.connect() as conn:
        district = conn.execute(text("SELECT district_code FROM street WHERE code = :c"),
                                {"c": streets[0]}).scalar_one()
        made = map_export.build_map(conn, "district", district)
        compounds = conn.execute(text("SELECT count(*) FROM compound WHERE valid_to IS NULL AND community_code "
                                      "LIKE :p"), {"p": district + "%"}).scalar_one()
    assert made.counts["compounds"] == compounds
    with engine.connect() as conn:
        in_street = conn.execute(text("SELECT count(*) FROM compound WHERE valid_to IS NULL AND community_code "
                                      "LIKE :p"), {"p": streets[0] + "%"}).scalar_one()
    assert made.counts["compounds"] > in_street
    assert not FETCHING.findall(made.html) and not CSS_URL.findall(made.html)


def test_an_element_wanting_a_library_without_a_local_copy_is_refused_not_linked():
    import folium
    from folium.plugins import Fullscreen

    fmap = folium.Map(tiles=None)
    Fullscreen().add_to(fmap)
    with pytest.raises(SetupError, match="没有本地副本"):
        map_export.inline_assets(fmap.get_root())
    # folium's own class lists are left as they were (the instance's are replaced)
    assert folium.Map.default_js and folium.Map.default_js[0][0] == "leaflet"


def test_missing_vendored_files_are_a_setup_error(engine, streets, tmp_path):
    with engine.connect() as conn, pytest.raises(SetupError, match="make setup"):
        map_export.build_map(conn, "street", streets[0], vendor_dir=tmp_path)


def test_unknown_and_malformed_areas(engine):
    from gis.errors import InvalidInput

    with engine.connect() as conn:
        with pytest.raises(NotFound):
            map_export.build_map(conn, "street", "999999999")
        with pytest.raises(InvalidInput):
            map_export.build_map(conn, "street", "37")
        with pytest.raises(InvalidInput):
            map_export.build_map(conn, "district", "370902'--")


def test_the_cli_writes_the_file(city_db, streets, tmp_path):
    out = tmp_path / "street.html"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "gridgov"), "map", "export", "--street", streets[0], "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "GRIDGOV_DATABASE_URL": city_db}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "compounds" in result.stdout and "MB" in result.stdout
    both = subprocess.run(
        [str(Path(sys.executable).parent / "gridgov"), "map", "export", "--street", streets[0], "--district", "370902"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "GRIDGOV_DATABASE_URL": city_db}, timeout=120)
    assert both.returncode == 2


@pytest.fixture(scope="module")
def server(city_db, streets):
    async def users():
        engine = create_async_engine(with_driver(city_db, "asyncpg"))
        async with engine.begin() as conn:
            await auth.create_user(conn, "mx-admin", PASSWORD, "admin", [], None)
            await auth.create_user(conn, "mx-planner", PASSWORD, "planner", [], None)
            await auth.create_user(conn, "mx-street", PASSWORD, "street", [streets[0]], None)
            await auth.create_user(conn, "mx-grid", PASSWORD, "grid_worker", [streets[0] + "001001"], None)
        await engine.dispose()

    asyncio.run(users())
    live = LiveServer(city_db)
    with live.client() as http:
        live.tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in ("mx-admin", "mx-planner", "mx-street", "mx-grid")}
    yield live
    live.stop()


def _get(server, who, **params):
    headers = {"Authorization": f"Bearer {server.tokens[who]}"} if who else {}
    with server.client(headers=headers) as http:
        return http.get("/reports/map.html", params=params, timeout=300)


def test_the_api_download_and_its_scope(server, streets):
    own = _get(server, "mx-street", street=streets[0])
    assert own.status_code == 200, own.text
    assert own.headers["content-type"].startswith("text/html")
    assert own.headers["content-disposition"] == f'attachment; filename="map-{streets[0]}-' \
                                                 f'{datetime.now(map_export.LOCAL_TIME):%Y%m%d}.html"'
    assert not FETCHING.findall(own.text) and "网格治理地图" in own.text
    other = _get(server, "mx-street", street=streets[1])
    assert other.status_code == 404 and "没有找到" in other.json()["detail"]
    assert _get(server, "mx-street", district=streets[0][:6]).status_code == 404
    assert _get(server, "mx-planner", district=streets[0][:6]).status_code == 200
    assert _get(server, "mx-admin", street=streets[1]).status_code == 200
    grid = _get(server, "mx-grid", street=streets[0])
    assert grid.status_code == 403 and "导出地图" in grid.json()["detail"]
    assert _get(server, "mx-grid").status_code == 403, "the role is refused before the area is read"
    assert _get(server, None, street=streets[0]).status_code == 401
    for params in ({}, {"street": streets[0], "district": streets[0][:6]}, {"street": "abc"},
                   {"street": streets[0], "period": "not a period"}):
        answer = _get(server, "mx-planner", **params)
        assert answer.status_code == 400, (params, answer.text)
        assert re.search(r"[\u4e00-\u9fff]", answer.json()["detail"])
    assert _get(server, "mx-planner", street="999999999").status_code == 404
