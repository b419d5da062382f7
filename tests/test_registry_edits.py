"""Editing the registry in the app (gis/registry/edits.py over /registry/...): each edit one audited action with
its old and new values and reason, through the kinds' own checks and the dated versions; a street cannot edit
another street's compound (404, as for an unknown one); a company's proposal changes nothing until approved;
an overlapping term is refused with the reason; the change log refuses UPDATE, DELETE and TRUNCATE."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import psycopg
import pytest
from conftest import LiveServer, _clone
from sqlalchemy import text
from test_registry_import import build_hand_city, import_registry
from test_tickets_support import PASSWORD, make_users

from gis.db.engine import sync_engine
from gis.registry import history

C1, C3 = "370902001001C0001", "370902002001C0001"
GRID1, GRID2 = "370902001001001", "370902001001002"
PARTY_COMMUNITY1 = "P-COMM-370902001001"
COMPANY_A = "91370902MA3C5E7L0W"
USERS = ("admin", "street1", "street2", "community1", "community2", "planner", "company1", "company2")


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
            "access_token"] for name in USERS}
    yield {"url": url, "engine": engine, "server": server, "tokens": tokens, "companies": made["companies"]}
    server.stop()
    engine.dispose()


def client(world, name):
    return world["server"].client(headers={"Authorization": f"Bearer {world['tokens'][name]}"})


def last_change(world, subject: str, key: str):
    with world["engine"].connect() as conn:
        return conn.execute(text("SELECT username, role, action, old, new, reason, at FROM audit_change "
                                 "WHERE subject = :s AND record_key = :k ORDER BY id DESC"),
                            {"s": subject, "k": key}).first()


def test_a_mode_change_is_a_dated_audited_version_in_scope(world):
    body = {"management_mode": "代管", "on_date": "2026-06-01", "reason": "原物业撤场，社区代管"}
    with client(world, "street2") as street2:
        other = street2.post(f"/registry/compounds/{C1}/management", json=body)
        unknown = street2.post("/registry/compounds/370902002001C9999/management", json=body)
    assert other.status_code == unknown.status_code == 404
    assert "不存在或不在您的管辖范围内" in other.json()["detail"]
    for name in ("planner", "company1"):
        with client(world, name) as someone:
            assert someone.post(f"/registry/compounds/{C1}/management", json=body).status_code == 403
    with client(world, "street1") as street1:
        future = street1.post(f"/registry/compounds/{C1}/management", json={**body, "on_date": "2099-01-01"})
        no_reason = street1.post(f"/registry/compounds/{C1}/management", json={**body, "reason": " "})
        done = street1.post(f"/registry/compounds/{C1}/management", json=body)
        again = street1.post(f"/registry/compounds/{C1}/management", json=body)
    assert future.status_code == 400 and "晚于今天" in future.json()["detail"]
    assert no_reason.status_code == 400 and "原因" in no_reason.json()["detail"]
    assert done.status_code == 200, done.text
    assert again.status_code == 400 and "没有变化" in again.json()["detail"]
    with world["engine"].connect() as conn:
        may = history.management_as_of(conn, date(2026, 5, 31), [C1])[C1]
        june = history.management_as_of(conn, date(2026, 6, 1), [C1])[C1]
        current = conn.execute(text("SELECT management_mode FROM compound WHERE code = :c"), {"c": C1}).scalar()
    assert may["management_mode"] == "professional" and june["management_mode"] == "entrusted"
    assert june["property_company_id"] == may["property_company_id"]  # the mode changed, not the company
    assert current == "entrusted"
    change = last_change(world, "compound_management", C1)
    assert (change.username, change.role, change.reason) == ("street1", "street", body["reason"])
    assert change.old["management_mode"] == "professional" and change.new["management_mode"] == "entrusted"
    assert change.new["valid_from"] == "2026-06-01"


def test_a_new_term_is_audited_and_an_overlapping_one_refused(world):
    term = {"term_start": "2026-03-01", "term_end": "2031-02-28", "member_count": 7, "party_member_count": 3,
            "chair_name": "郑新", "chair_is_party_member": True, "members": "郑新、王一、李二", "reason": "换届选举"}
    with client(world, "street1") as street1:
        overlapping = street1.post(f"/registry/compounds/{C1}/committee-terms", json=term)
    assert overlapping.status_code == 400
    assert "与已登记的任期（2024-05-01 至 2029-04-30）重叠" in overlapping.json()["detail"]
    with client(world, "community1") as community1:
        assert community1.post(f"/registry/compounds/{C3}/committee-terms", json=term).status_code == 404
    with client(world, "community2") as community2:
        odd = community2.post(f"/registry/compounds/{C3}/committee-terms", json={**term, "party_member_count": 9})
        done = community2.post(f"/registry/compounds/{C3}/committee-terms", json=term)
    assert odd.status_code == 400 and "党员委员人数 9 多于委员人数 7" in odd.json()["detail"]
    assert done.status_code == 200, done.text
    with world["engine"].connect() as conn:
        assert history.committees_as_of(conn, date(2026, 3, 1), [C3])[C3]["chair_name"] == "郑新"
        assert C3 not in history.committees_as_of(conn, date(2026, 2, 28), [C3])
        current = conn.execute(text("SELECT formed_on, chair_name FROM owners_committee WHERE compound_code = :c"),
                               {"c": C3}).one()
    assert tuple(current) == (date(2026, 3, 1), "郑新")
    change = last_change(world, "owners_committee", f"{C3} / 2026-03-01")
    assert change.username == "community2" and change.action == "new_term" and change.reason == "换届选举"
    assert change.old is None  # no term was in force
    assert change.new["chair_name"] == "郑新" and change.new["term_end"] == "2031-02-28"


def test_grid_workers_join_and_leave_as_dated_assignments(world):
    with world["engine"].connect() as conn:
        feng = conn.execute(text("SELECT id FROM grid_worker WHERE phone = '13905381001'")).scalar_one()
    move = {"grid_code": GRID2, "worker_id": feng, "on_date": "2026-09-01", "reason": "调整网格"}
    with client(world, "street2") as street2:
        assert street2.post("/registry/grid-workers/joins", json=move).status_code == 404
        assert street2.post(f"/registry/grid-workers/{feng}/leave",
                            json={"on_date": "2026-10-01", "reason": "离职"}).status_code == 404
    with client(world, "street1") as street1:
        moved = street1.post("/registry/grid-workers/joins", json=move)
        early = street1.post(f"/registry/grid-workers/{feng}/leave", json={"on_date": "2026-08-01", "reason": "离职"})
        left = street1.post(f"/registry/grid-workers/{feng}/leave", json={"on_date": "2026-10-01", "reason": "离职"})
        new = street1.post("/registry/grid-workers/joins", json={
            "grid_code": GRID1, "on_date": "2026-10-01", "reason": "新招聘",
            "worker": {"name": "褚新", "phone": "139 0538 1099", "is_party_member": False}})
        bad_phone = street1.post("/registry/grid-workers/joins", json={
            "grid_code": GRID1, "on_date": "2026-10-01", "reason": "新招聘",
            "worker": {"name": "褚新", "phone": "12345", "is_party_member": False}})
    assert moved.status_code == 200, moved.text
    assert early.status_code == 400 and "应晚于任职日期 2026-09-01" in early.json()["detail"]
    assert left.status_code == 200, left.text
    assert new.status_code == 200, new.text
    assert bad_phone.status_code == 400 and "“手机号”：手机号应为 11 位数字" in bad_phone.json()["detail"]
    with world["engine"].connect() as conn:
        def names(day, grid):
            return [row["name"] for row in history.grid_workers_as_of(conn, day, grid)]
        assert "冯晓" in names(date(2026, 8, 31), GRID1) and "冯晓" not in names(date(2026, 9, 1), GRID1)
        assert "冯晓" in names(date(2026, 9, 30), GRID2) and "冯晓" not in names(date(2026, 10, 1), GRID2)
        assert "褚新" in names(date(2026, 10, 1), GRID1) and "褚新" not in names(date(2026, 9, 30), GRID1)
    with world["engine"].connect() as conn:
        actions = conn.execute(text("SELECT action, old, new FROM audit_change WHERE subject = 'grid_worker' "
                                    "AND record_key = '13905381001' AND action <> 'insert' ORDER BY id")).all()
    assert [row.action for row in actions] == ["join", "leave"]
    joined, leaving = actions
    assert joined.old["grid_code"] == GRID1 and joined.new == {"grid_code": GRID2, "since": "2026-09-01",
                                                               "name": "冯晓"}
    assert leaving.old["grid_code"] == GRID2 and leaving.new["until"] == "2026-10-01"


def test_a_party_organisations_secretary_and_its_dissolution(world):
    body = {"secretary_name": "魏新书记", "secretary_phone": "13905382999", "reason": "换届"}
    with client(world, "street2") as street2:
        assert street2.post(f"/registry/party-organisations/{PARTY_COMMUNITY1}/secretary",
                            json=body).status_code == 404
    with client(world, "community1") as community1:
        done = community1.post(f"/registry/party-organisations/{PARTY_COMMUNITY1}/secretary", json=body)
        company_branch = community1.post(f"/registry/party-organisations/P-COMP-{COMPANY_A}/secretary", json=body)
    assert done.status_code == 200, done.text
    assert company_branch.status_code == 404  # a company's branch is the administrator's
    change = last_change(world, "party_organisation", PARTY_COMMUNITY1)
    assert change.old == {"secretary_name": "韩书记", "secretary_phone": "13905382001"}
    assert change.new == {"secretary_name": "魏新书记", "secretary_phone": "13905382999"}
    with world["engine"].connect() as conn:
        assert conn.execute(text("SELECT secretary_name FROM party_organisation WHERE code = :c"),
                            {"c": PARTY_COMMUNITY1}).scalar() == "魏新书记"
    code = "P-COMP-370902001001C0001"
    with client(world, "street1") as street1:
        early = street1.post(f"/registry/party-organisations/{code}/dissolve",
                             json={"on_date": "2020-01-01", "reason": "小区合并"})
        dissolved = street1.post(f"/registry/party-organisations/{code}/dissolve",
                                 json={"on_date": "2026-07-01", "reason": "小区合并"})
        twice = street1.post(f"/registry/party-organisations/{code}/dissolve",
                             json={"on_date": "2026-08-01", "reason": "小区合并"})
    assert early.status_code == 400 and "应晚于成立日期 2021-03-01" in early.json()["detail"]
    assert dissolved.status_code == 200, dissolved.text
    assert twice.status_code == 400 and "已撤销" in twice.json()["detail"]
    with world["engine"].connect() as conn:
        assert code in history.party_organisations_as_of(conn, date(2026, 6, 30), C1)
        assert code not in history.party_organisations_as_of(conn, date(2026, 7, 1), C1)


def _company(world, company_id: int):
    with world["engine"].connect() as conn:
        return conn.execute(text("SELECT credit_code, contact_name, contact_phone, has_party_org, party_work_only "
                                 "FROM property_company WHERE id = :id"), {"id": company_id}).one()


def test_a_companys_proposal_changes_nothing_until_approved(world):
    company_id = world["companies"][0]
    before = _company(world, company_id)
    with client(world, "company1") as company1:
        contradictory = company1.post("/registry/company/proposals",
                                      json={"has_party_org": True, "party_work_only": True})
        proposed = company1.post("/registry/company/proposals",
                                 json={"contact_name": "卫经理", "contact_phone": "0538-8123456"})
        second = company1.post("/registry/company/proposals", json={"contact_name": "另一人"})
        own = company1.get("/registry/company").json()
        listed = company1.get("/registry/proposals").json()
    assert contradictory.status_code == 400 and "“有党组织”为是时" in contradictory.json()["detail"]
    assert proposed.status_code == 200, proposed.text
    assert second.status_code == 409 and "待审核" in second.json()["detail"]
    assert _company(world, company_id) == before  # pending: nothing changed
    assert own["latest_proposal"]["state"] == "pending" and own["company"]["contact_name"] == before.contact_name
    assert [p["id"] for p in listed] == [proposed.json()["id"]]
    proposal = proposed.json()["id"]
    with client(world, "company2") as company2:
        assert company2.get("/registry/proposals").json() == []
        assert company2.post(f"/registry/proposals/{proposal}/approve", json={}).status_code == 403
    with client(world, "community1") as community1:
        assert community1.post(f"/registry/proposals/{proposal}/approve", json={}).status_code == 403
    with client(world, "admin") as admin:
        no_reason = admin.post(f"/registry/proposals/{proposal}/reject", json={})
        approved = admin.post(f"/registry/proposals/{proposal}/approve", json={"reason": "材料齐全"})
        decided = admin.post(f"/registry/proposals/{proposal}/reject", json={"reason": "晚了"})
    assert no_reason.status_code == 400 and "原因" in no_reason.json()["detail"]
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    assert decided.status_code == 409
    after = _company(world, company_id)
    assert (after.contact_name, after.contact_phone) == ("卫经理", "0538-8123456")
    change = last_change(world, "property_company", before.credit_code)
    assert change.username == "admin" and change.reason == "材料齐全"
    assert change.old == {"contact_name": before.contact_name, "contact_phone": before.contact_phone}
    assert change.new == {"contact_name": "卫经理", "contact_phone": "0538-8123456"}
    # a rejected one leaves the company as it was
    with client(world, "company1") as company1:
        again = company1.post("/registry/company/proposals", json={"has_party_org": not after.has_party_org,
                                                                    "party_work_only": False})
    with client(world, "admin") as admin:
        rejected = admin.post(f"/registry/proposals/{again.json()['id']}/reject", json={"reason": "无党组织批复文件"})
    assert rejected.status_code == 200 and rejected.json()["decision_reason"] == "无党组织批复文件"
    assert _company(world, company_id) == after


def test_the_change_log_is_listed_in_scope_newest_first(world):
    with client(world, "street1") as street1, client(world, "street2") as street2:
        own = street1.get("/registry/changes", params={"limit": 500})
        other = street2.get("/registry/changes", params={"limit": 500})
    with client(world, "planner") as planner:
        assert planner.get("/registry/changes").status_code == 403
    assert own.status_code == other.status_code == 200
    ids = [row["id"] for row in own.json()]
    assert ids == sorted(ids, reverse=True)
    keys = {row["record_key"] for row in own.json()}
    assert C1 in keys and PARTY_COMMUNITY1 in keys and "13905381001" in keys
    assert not any(key.startswith(C3) for key in keys)
    assert any(row["record_key"].startswith(C3) for row in other.json())
    assert C1 not in {row["record_key"] for row in other.json()}


def test_the_change_log_refuses_update_delete_and_truncate(world):
    for statement in ("UPDATE audit_change SET reason = 'x'", "DELETE FROM audit_change",
                      "TRUNCATE audit_change"):
        with psycopg.connect(world["url"]) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)


def test_the_command_line_takeover(world):
    env = {**os.environ, "GRIDGOV_DATABASE_URL": world["url"]}

    def gridgov(*args):
        return subprocess.run([sys.executable, "-m", "cli", "registry", *args], env=env, capture_output=True,
                              text=True, timeout=300)

    bad = gridgov("takeover", C3, COMPANY_A, "--on", "2026-13-01", "--reason", "接管")
    assert bad.returncode == 1 and "日期" in bad.stderr
    done = gridgov("takeover", C3, COMPANY_A, "--on", "2026-11-01", "--reason", "原物业退出")
    assert done.returncode == 0, done.stderr
    with world["engine"].connect() as conn:
        november = history.management_as_of(conn, date(2026, 11, 1), [C3])[C3]
        company = conn.execute(text("SELECT id FROM property_company WHERE credit_code = :c"),
                               {"c": COMPANY_A}).scalar()
    assert november["property_company_id"] == company
    change = last_change(world, "compound_management", C3)
    assert change.username == "cli" and change.reason == "原物业退出"
