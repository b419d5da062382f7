"""Registry history (gis/registry/history.py): "as of" a date before and after a takeover, a committee's
re-election and a grid worker's move, as the hand-made registry's versions say; takeovers through the API in
the caller's scope (another street's compound is a 404), audited; committees whose term is ending."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import pytest
from conftest import LiveServer, _clone
from sqlalchemy import text
from test_registry_import import ADMIN, DATA, build_hand_city, import_registry
from test_tickets_support import PASSWORD, make_users

from gis.db.engine import sync_engine
from gis.registry import history

C1, C2, C3 = "370902001001C0001", "370902001001C0002", "370902002001C0001"
GRID1, GRID2 = "370902001001001", "370902001001002"
COMPANY_A, COMPANY_B, COMPANY_1 = "91370902MA3C5E7L0W", "52370902MJD123450Q", "91370900MA00000107"


@pytest.fixture(scope="module")
def world(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    made = build_hand_city(url)
    engine = sync_engine(url)
    import_registry(engine)
    make_users(url, made["companies"])
    server = LiveServer(url)
    with server.client() as http:
        tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in ("admin", "street1", "street2", "community1", "community2", "planner")}
    with engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT credit_code, id FROM property_company")).all())
    yield {"url": url, "engine": engine, "server": server, "tokens": tokens, "ids": ids}
    server.stop()
    engine.dispose()


def client(world, name):
    return world["server"].client(headers={"Authorization": f"Bearer {world['tokens'][name]}"})


def test_management_as_of_before_and_after_the_mid_year_takeover(world):
    ids = world["ids"]
    with world["engine"].connect() as conn:
        june = history.management_as_of(conn, date(2025, 6, 30), [C1, C2])
        july = history.management_as_of(conn, date(2025, 7, 1), [C1, C2])
        last_year = history.management_as_of(conn, date(2024, 12, 31), [C1])
    assert june[C2] == {"management_mode": "none", "property_company_id": None}
    assert july[C2] == {"management_mode": "community_led", "property_company_id": ids[COMPANY_B]}
    assert last_year[C1] == {"management_mode": "professional", "property_company_id": ids[COMPANY_1]}
    assert june[C1] == july[C1] == {"management_mode": "professional", "property_company_id": ids[COMPANY_A]}


def test_committees_as_of_before_and_after_the_re_election(world):
    with world["engine"].connect() as conn:
        before = history.committees_as_of(conn, date(2024, 4, 30))
        after = history.committees_as_of(conn, date(2024, 5, 1))
        current = conn.execute(text("SELECT formed_on, term_end, chair_name FROM owners_committee "
                                    "WHERE compound_code = :c"), {"c": C1}).one()
    assert before[C1]["chair_name"] == "周建国" and after[C1]["chair_name"] == "吴敏"
    assert before[C3]["chair_name"] == after[C3]["chair_name"] == "陈明"
    assert C2 not in before and C2 not in after  # its first committee was formed in 2025
    assert tuple(current) == (date(2024, 5, 1), date(2029, 4, 30), "吴敏")
    with world["engine"].connect() as conn:
        assert C3 not in history.committees_as_of(conn, date(2025, 1, 1))  # its term ended, none re-elected


def test_grid_workers_as_of_before_and_after_a_move(world):
    with world["engine"].connect() as conn:
        def names(day, grid):
            return [row["name"] for row in history.grid_workers_as_of(conn, day, grid)]
        assert names(date(2025, 1, 31), GRID1) == ["网格员1"]
        assert names(date(2025, 2, 28), GRID1) == ["网格员1", "冯晓"]
        assert names(date(2025, 3, 1), GRID1) == ["冯晓"]
        assert names(date(2025, 4, 1), GRID1) == ["冯晓", "陈兼职"]
        assert names(date(2025, 3, 1), GRID2) == ["网格员1", "网格员2"]
        grid = conn.execute(text("SELECT grid_code FROM grid_worker WHERE phone = '13800000000'")).scalar_one()
    assert grid == GRID2


def test_party_organisations_exist_from_their_founding(world):
    with world["engine"].connect() as conn:
        assert history.party_organisations_as_of(conn, date(2015, 6, 30), "370902001001") == []
        assert history.party_organisations_as_of(conn, date(2015, 7, 1), "370902001001") == ["P-COMM-370902001001"]


def test_a_takeover_through_the_api_is_one_audited_action_in_scope(world):
    body = {"company_credit_code": COMPANY_B, "on_date": "2025-10-01", "reason": "原物业企业被列入黑榜后退出"}
    with client(world, "street2") as street2:
        refused = street2.post(f"/registry/compounds/{C1}/takeover", json=body)
    assert refused.status_code == 404
    with client(world, "planner") as planner:
        assert planner.post(f"/registry/compounds/{C1}/takeover", json=body).status_code == 403
    with client(world, "street1") as street1:
        early = street1.post(f"/registry/compounds/{C1}/takeover", json={**body, "on_date": "2024-12-01"})
        done = street1.post(f"/registry/compounds/{C1}/takeover", json=body)
    assert early.status_code == 400 and "应晚于当前管理方式的开始日期 2025-01-01" in early.json()["detail"]
    assert done.status_code == 200, done.text
    ids = world["ids"]
    with world["engine"].connect() as conn:
        september = history.management_as_of(conn, date(2025, 9, 30), [C1])[C1]
        october = history.management_as_of(conn, date(2025, 10, 1), [C1])[C1]
        current = conn.execute(text("SELECT management_mode, property_company_id FROM compound WHERE code = :c"),
                               {"c": C1}).one()
        audit = conn.execute(text("SELECT username, old, new, reason FROM audit_change "
                                  "WHERE subject = 'compound_management' AND record_key = :c ORDER BY id DESC"),
                             {"c": C1}).first()
    assert september == {"management_mode": "professional", "property_company_id": ids[COMPANY_A]}
    assert october == {"management_mode": "community_led", "property_company_id": ids[COMPANY_B]}
    assert tuple(current) == ("community_led", ids[COMPANY_B])
    assert audit.username == "street1" and audit.reason == body["reason"]
    assert audit.old["property_company_id"] == ids[COMPANY_A] and audit.new["property_company_id"] == ids[COMPANY_B]
    assert audit.new["valid_from"] == "2025-10-01"


def test_committees_ending_per_community(world):
    with world["engine"].connect() as conn:
        today = history.expiring_committees(conn, ADMIN, day=date(2026, 1, 1))
        spring_2029 = history.expiring_committees(conn, ADMIN, day=date(2029, 3, 1))
    assert [(row["compound_code"], row["ended"]) for row in today] == [(C3, True)]
    assert [(row["compound_code"], row["ended"], row["days_left"]) for row in spring_2029] == [
        (C1, False, 60), (C3, True, -1520)]
    with client(world, "community1") as community1, client(world, "community2") as community2:
        own = community1.get("/registry/committees/expiring", params={"within_days": 90})
        other = community2.get("/registry/committees/expiring")
    assert own.status_code == other.status_code == 200
    assert C3 not in {row["compound_code"] for row in own.json()}
    assert C3 in {row["compound_code"] for row in other.json()}


def test_templates_imports_and_exports_over_http(world):
    with client(world, "street1") as street1:
        kinds = street1.get("/registry/kinds").json()
        template = street1.get("/registry/owners_committee/template.csv")
        xlsx = street1.get("/registry/owners_committee/template.xlsx")
        exported = street1.get("/registry/owners_committee/export.csv")
        again = street1.post("/registry/owners_committee/imports",
                             files={"file": ("terms.csv", exported.content, "text/csv")})
        unknown = street1.get("/registry/no_such_kind/export.csv")
        companies = street1.post("/registry/property_company/imports",
                                 files={"file": ("c.csv", (DATA / "property_company_gbk.csv").read_bytes())})
        mapped = street1.post("/registry/grid_worker/imports", data={"mapping": '{"联系电话": "手机号"}'},
                              files={"file": ("w.csv", "姓名,联系电话\n".encode())})
    assert {kind["kind"] for kind in kinds} >= {"property_company", "compound_attributes", "owners_committee"}
    assert template.content.decode("utf-8-sig").startswith("小区编码,任期开始日期")
    assert xlsx.content[:2] == b"PK"
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 1 + 3 and C3 not in exported.text  # street 1's three terms, not street 2's
    report = again.json()
    assert again.status_code == 200 and report["rows_read"] == report["unchanged"] == 3
    assert unknown.status_code == 404
    assert companies.status_code == 403
    assert mapped.status_code == 400 and "必填列" in mapped.json()["detail"]


def test_the_command_line_imports_exports_and_writes_templates(world, tmp_path):
    env = {**os.environ, "GRIDGOV_DATABASE_URL": world["url"]}

    def gridgov(*args):
        return subprocess.run([sys.executable, "-m", "cli", "registry", *args], env=env, capture_output=True,
                              text=True, timeout=300)

    made = gridgov("template", "grid_worker", "--xlsx", "-o", str(tmp_path / "t.xlsx"))
    assert made.returncode == 0 and (tmp_path / "t.xlsx").read_bytes()[:2] == b"PK"
    out = tmp_path / "workers.csv"
    exported = gridgov("export", "grid_worker", str(out))
    assert exported.returncode == 0, exported.stderr
    imported = gridgov("import", "grid_worker", str(out))
    assert imported.returncode == 0, imported.stderr
    assert "0 imported + 0 updated" in imported.stdout and "0 rejected" in imported.stdout
    mapped = gridgov("import", "grid_worker", str(DATA / "grid_worker_own_headers.csv"), "--map", "联系电话=手机号",
                     "--map", "所在网格=网格编码", "--map", "党员=是否党员", "--map", "兼职=是否兼职",
                     "--map", "所属物业企业=所属物业企业信用代码")
    assert mapped.returncode == 0, mapped.stderr
    assert "7 rows read = 0 imported + 0 updated + 3 unchanged + 4 rejected" in mapped.stdout
    wrong = gridgov("import", "grid_worker", str(DATA / "grid_worker_own_headers.csv"))
    assert wrong.returncode == 1 and "模板中没有列" in wrong.stderr
