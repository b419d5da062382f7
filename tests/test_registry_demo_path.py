"""The demo city comes through the registry's import, as a city's own registry does; the import's set-based
writes are the row-by-row ones; a grid worker who left shows nowhere current; a party organisation's dissolution
(撤销日期) imports and exports.

Oracles: the generator's own tables (what the fixture must hold), the import with its set-based writes switched
off (what each row's own save writes), and the dated assignments as the edit API leaves them.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import psycopg
import pytest
from conftest import SMALL_SEED, LiveServer, _clone
from test_registry_import import ADMIN, build_hand_city, import_registry, snapshot
from test_tickets_support import PASSWORD, STREETS, make_users

from gis.db.engine import sync_engine
from gis.intake.open311 import new_api_key
from gis.registry import export, history, kinds, load

DEMO_KINDS = ["property_company", "compound_attributes", "party_organisation", "grid_worker", "owners_committee",
              "cross_appointment", "building_leader", "regulator_inspection", "company_rating",
              "satisfaction_survey"]
"""Every kind the generator writes, in the order it imports them (credit items carry their reviews, which the
template does not hold, so they are written with them)."""


@pytest.fixture(scope="module")
def generated():
    from fixtures.city import generate_city

    return generate_city("small", SMALL_SEED).tables


def _rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


# --- the demo city through the import ------------------------------------------------------------------------

def test_every_registry_kind_of_the_demo_city_came_through_its_import(city_db, generated):
    batches = _rows(city_db, "SELECT kind, rows_read, imported, updated, unchanged, rejected, username "
                             "FROM registry_import ORDER BY id")
    assert [b[0] for b in batches] == DEMO_KINDS
    assert all(b[5] == 0 and b[6] == "fixtures" and b[2] + b[3] == b[1] for b in batches), batches
    read = {b[0]: b[1] for b in batches}
    led = generated["building"]["leader_name"].notna().sum()
    assert (read["party_organisation"], read["grid_worker"], read["owners_committee"], read["cross_appointment"],
            read["building_leader"]) == (len(generated["party_organisation"]), len(generated["grid_worker"]),
                                          len(generated["owners_committee"]), len(generated["cross_appointment"]),
                                          led)
    for kind in DEMO_KINDS:  # one change-log entry per written row, naming the import
        logged = _rows(city_db, f"SELECT count(*) FROM audit_change WHERE subject = '{kind}' "
                                "AND username = 'fixtures' AND action IN ('insert', 'update')")[0][0]
        assert logged == read[kind], kind


def test_the_demo_citys_parties_are_the_generators_with_their_versions(city_db, generated):
    party = generated["party_organisation"]
    assert _rows(city_db, "SELECT p.code, p.kind, p.unit_code, p.secretary_name, p.member_count, e.valid_from, "
                          "e.valid_to FROM party_organisation p JOIN party_organisation_period e "
                          "ON e.organisation_code = p.code ORDER BY p.id") == [
        (r.code, r.kind, r.unit_code, r.secretary_name, r.member_count, r.founded_on, None)
        for r in party.itertuples()]
    workers = generated["grid_worker"]
    assert _rows(city_db, "SELECT w.phone, w.grid_code, w.is_part_time, a.grid_code, a.valid_from, a.valid_to "
                          "FROM grid_worker w JOIN grid_worker_assignment a ON a.grid_worker_id = w.id "
                          "ORDER BY w.id") == [
        (r.phone, r.grid_code, r.is_part_time, r.grid_code, r.since, None) for r in workers.itertuples()]
    terms = generated["owners_committee"]
    assert _rows(city_db, "SELECT compound_code, term_start, term_end, chair_name FROM owners_committee_term "
                          "ORDER BY compound_code") == sorted(
        (r.compound_code, r.formed_on, r.term_end, r.chair_name) for r in terms.itertuples())
    assert _rows(city_db, "SELECT compound_code, formed_on, term_end FROM owners_committee ORDER BY id") == [
        (r.compound_code, r.formed_on, r.term_end) for r in terms.itertuples()]
    buildings = generated["building"]
    assert _rows(city_db, "SELECT code, leader_name, leader_phone, leader_is_party_member FROM building "
                          "WHERE valid_to IS NULL ORDER BY code") == sorted(
        (r.code, r.leader_name if isinstance(r.leader_name, str) else None,
         r.leader_phone if isinstance(r.leader_phone, str) else None, bool(r.leader_is_party_member))
        for r in buildings.itertuples())
    cross = generated["cross_appointment"]
    assert _rows(city_db, "SELECT person_name, home_ref, seat_ref, role, since FROM cross_appointment "
                          "ORDER BY id") == [(r.person_name, r.home_ref, r.seat_ref, r.role, r.since)
                                             for r in cross.itertuples()]


def test_the_evaluation_inputs_came_through_the_import_whole(city_db):
    # every inspection's findings are its items with a deduction, as the import counts them
    assert _rows(city_db, """
        SELECT count(*) FROM regulator_inspection i
        WHERE i.findings <> (SELECT count(*) FROM inspection_item it WHERE it.inspection_id = i.id
                             AND it.deduction > 0)""") == [(0,)]
    # every survey belongs to the company managing its compound, every rating to a unit the company serves
    assert _rows(city_db, """
        SELECT count(*) FROM satisfaction_survey s JOIN compound c ON c.code = s.compound_code
        WHERE c.valid_to IS NULL AND c.property_company_id IS DISTINCT FROM s.company_id""") == [(0,)]
    counts = _rows(city_db, "SELECT (SELECT count(*) FROM regulator_inspection), (SELECT count(*) FROM "
                            "company_rating), (SELECT count(*) FROM satisfaction_survey)")[0]
    read = dict(_rows(city_db, "SELECT kind, rows_read FROM registry_import"))
    assert counts == (read["regulator_inspection"], read["company_rating"], read["satisfaction_survey"])


# --- the set-based writes are the row-by-row ones ------------------------------------------------------------

def _without_batches(monkeypatch) -> None:
    for name, kind in list(kinds.KINDS.items()):
        monkeypatch.setitem(kinds.KINDS, name, dataclasses.replace(kind, save_many=None))


def _accounts(reports: dict) -> dict:
    return {kind: [(r.row, r.state, r.key, r.reason, r.changed) for r in report.rows]
            for kind, report in reports.items()}


def test_the_set_based_import_writes_what_the_row_by_row_one_does(pg_cluster, empty_template, monkeypatch):
    """The hand-made, messy registry (rejections, duplicates, overlapping terms, updates) imported twice, once
    with every kind's set-based writes and once row by row: the same account of every row, the same tables."""
    results = []
    for batched in (True, False):
        url = _clone(pg_cluster, empty_template)
        build_hand_city(url)
        engine = sync_engine(url)
        try:
            with monkeypatch.context() as patch:
                if not batched:
                    _without_batches(patch)
                first = import_registry(engine)
                again = import_registry(engine)
            # surrogate ids are not the records (a version's id depends on the order the rows were written in)
            tables = {table: sorted(map(repr, _rows(url, f"SELECT to_jsonb(t) - 'id' - 'recorded_at' FROM {table} t")))
                      for table in snapshot(engine)}
        finally:
            engine.dispose()
        audit = _rows(url, "SELECT subject, record_key, action, old, new FROM audit_change ORDER BY id")
        results.append((_accounts(first), _accounts(again), tables, audit))
    (first, again, tables, audit), (first_rows, again_rows, tables_rows, audit_rows) = results
    assert first == first_rows
    assert again == again_rows
    assert sorted(map(repr, audit)) == sorted(map(repr, audit_rows))  # a file's log is written after its rows
    for table in tables:
        if table != "audit_change":
            assert tables[table] == tables_rows[table], table
    assert any(state == "rejected" for rows in first.values() for _, state, *_ in rows)


def test_a_batch_the_database_refuses_is_written_row_by_row(empty_db, tmp_path):
    """A row the checks pass but the database refuses (here a trigger stands for a constraint the checks did
    not foresee): the batch is undone, the row is rejected with the reason and the others are stored."""
    build_hand_city(empty_db)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("""
            CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.person_name = '拒绝' THEN RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_one BEFORE INSERT ON cross_appointment FOR EACH ROW EXECUTE FUNCTION refuse_one();
        """)
        community = conn.execute("SELECT min(code) FROM community").fetchone()[0]
        compound = conn.execute("SELECT min(code) FROM compound WHERE community_code = %s",
                                (community,)).fetchone()[0]
    kind = kinds.get_kind("cross_appointment")
    records = [{"person_name": name, "home_kind": "community_committee", "home_ref": community,
                "seat_kind": "owners_committee", "seat_ref": compound, "role": "业委会委员",
                "since": date(2024, 1, 1)} for name in ("甲某", "拒绝", "乙某")]
    path = tmp_path / "cross.csv"
    path.write_bytes(export.render(kind, records, "csv"))
    engine = sync_engine(empty_db)
    try:
        with engine.begin() as conn:
            report = load.import_file(conn, ADMIN, "cross_appointment", path)
    finally:
        engine.dispose()
    assert [(r.row, r.state) for r in report.rows] == [(2, "imported"), (3, "rejected"), (4, "imported")]
    assert report.rows[1].reason == "数据库拒绝了这一行"
    assert _rows(empty_db, "SELECT person_name FROM cross_appointment ORDER BY id") == [("甲某",), ("乙某",)]
    assert _rows(empty_db, "SELECT record_key FROM audit_change WHERE subject = 'cross_appointment' "
                           "ORDER BY id") == [(f"甲某 / 社区两委 / {community} / 业主委员会 / {compound}",),
                                              (f"乙某 / 社区两委 / {community} / 业主委员会 / {compound}",)]


# --- a grid worker who left ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(pg_cluster, small_template):
    """A clone of the test city with users, served over HTTP."""
    url = _clone(pg_cluster, small_template)
    companies = [row[0] for row in _rows(url, "SELECT id FROM property_company ORDER BY id LIMIT 2")]
    make_users(url, companies)
    server = LiveServer(url)
    with server.client() as http:
        tokens = {name: http.post("/auth/login", json={"username": name, "password": PASSWORD}).json()[
            "access_token"] for name in ("admin", "street1")}
    yield {"url": url, "server": server, "tokens": tokens}
    server.stop()


def _client(served, name):
    return served["server"].client(headers={"Authorization": f"Bearer {served['tokens'][name]}"})


def test_a_grid_worker_who_left_shows_nowhere_current_but_as_of_before(served):
    url = served["url"]
    worker, grid, since, lon, lat, compound = _rows(url, f"""
        SELECT w.id, w.grid_code, a.valid_from, ST_X(ST_PointOnSurface(m.geom)), ST_Y(ST_PointOnSurface(m.geom)),
               m.compound_code
        FROM grid_worker w JOIN grid_worker_assignment a ON a.grid_worker_id = w.id AND a.valid_to IS NULL
        JOIN micro_grid m ON m.grid_code = w.grid_code AND m.valid_to IS NULL AND m.compound_code IS NOT NULL
        WHERE NOT w.is_part_time AND starts_with(w.grid_code, '{STREETS[0]}')
        ORDER BY w.id, m.code LIMIT 1""")[0]
    name, phone = _rows(url, f"SELECT name, phone FROM grid_worker WHERE id = {worker}")[0]
    day = history.today() - timedelta(days=3)
    assert since < day

    api_key = new_api_key(url, "left-worker")

    def listed() -> dict[str, bool]:
        with _client(served, "street1") as street:
            panel = street.get("/responsibility", params={"lon": lon, "lat": lat}).json()
            parties = street.get(f"/registry/compounds/{compound}/parties").json()
            exported = street.get("/registry/grid_worker/export.csv").text
            posted = street.post("/open311/v2/requests.json", data={
                "api_key": api_key, "service_code": "E0603", "lat": lat, "long": lon})
        complaint = int(posted.json()[0]["service_request_id"])
        recorded, informed = _rows(url, "SELECT p.grid_worker_ids, t.informed FROM complaint_party p JOIN ticket t "
                                        f"ON t.complaint_id = p.complaint_id WHERE p.complaint_id = {complaint}")[0]
        return {"panel": name in [w["contact"]["name"] for w in panel["grid_workers"] if w["contact"]],
                "parties": worker in [w["id"] for w in parties["grid_workers"]],
                "export": phone in exported,
                "complaint": worker in recorded,
                "ticket": f"grid_worker:{worker}" in informed}

    before = listed()
    assert before == dict.fromkeys(before, True)
    with _client(served, "street1") as street:
        left = street.post(f"/registry/grid-workers/{worker}/leave", json={"on_date": day.isoformat(),
                                                                            "reason": "离职"})
        again = street.post(f"/registry/grid-workers/{worker}/leave", json={"on_date": day.isoformat(),
                                                                             "reason": "离职"})
    assert left.status_code == 200, left.text
    assert again.status_code == 400 and "已离任" in again.json()["detail"]
    after = listed()
    assert after == dict.fromkeys(after, False)
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            assert worker in [w["id"] for w in history.grid_workers_as_of(conn, day - timedelta(days=1), grid)]
            assert worker not in [w["id"] for w in history.grid_workers_as_of(conn, day, grid)]
    finally:
        engine.dispose()
    assert _rows(url, f"SELECT grid_code FROM grid_worker WHERE id = {worker}") == [(None,)]


# --- a party organisation's dissolution (撤销日期) ---------------------------------------------------------------

def _import(url: str, kind_name: str, records: list[dict], path) -> load.RegistryReport:
    path.write_bytes(export.render(kinds.get_kind(kind_name), records, "csv"))
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            return load.import_file(conn, ADMIN, kind_name, path)
    finally:
        engine.dispose()


def _as_of(url: str, day: date, unit: str) -> list[str]:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return history.party_organisations_as_of(conn, day, unit)
    finally:
        engine.dispose()


def test_a_dissolution_date_imports_exports_and_reimports_unchanged(fresh_city_db, tmp_path):
    url = fresh_city_db
    (compound,) = _rows(url, "SELECT min(code) FROM compound WHERE valid_to IS NULL")[0]
    org = {"code": "P-TEST-1", "kind": "compound_branch", "name": "试点党支部", "unit_code": compound,
           "secretary_name": "周书记", "secretary_phone": None, "member_count": 5, "founded_on": date(2020, 3, 1)}
    new = _import(url, "party_organisation", [{**org, "dissolved_on": date(2025, 9, 1)},
                                              {**org, "code": "P-TEST-2", "dissolved_on": None}], tmp_path / "a.csv")
    assert [r.state for r in new.rows] == ["imported", "imported"]
    assert "P-TEST-1" in _as_of(url, date(2025, 8, 31), compound)
    assert "P-TEST-1" not in _as_of(url, date(2025, 9, 1), compound)
    # an open organisation dissolved by a later file: its period closes through the edit's own function
    later = _import(url, "party_organisation", [{**org, "code": "P-TEST-2", "dissolved_on": date(2026, 1, 1)}],
                    tmp_path / "b.csv")
    assert [(r.state, r.changed) for r in later.rows] == [("updated", ["撤销日期"])]
    assert _rows(url, "SELECT organisation_code, valid_from, valid_to FROM party_organisation_period "
                      "WHERE starts_with(organisation_code, 'P-TEST') ORDER BY 1") == [
        ("P-TEST-1", date(2020, 3, 1), date(2025, 9, 1)), ("P-TEST-2", date(2020, 3, 1), date(2026, 1, 1))]
    # refused: moving or clearing a dissolution, a date before the founding or in the future
    refused = _import(url, "party_organisation", [
        {**org, "dissolved_on": date(2025, 10, 1)}, {**org, "code": "P-TEST-2", "dissolved_on": None},
        {**org, "code": "P-TEST-3", "dissolved_on": date(2019, 1, 1)},
        {**org, "code": "P-TEST-4", "dissolved_on": history.today() + timedelta(days=1)}], tmp_path / "c.csv")
    assert [r.state for r in refused.rows] == ["rejected"] * 4
    assert "已于 2025-09-01 撤销：撤销日期不能修改或清空" in refused.rows[0].reason
    assert "已于 2026-01-01 撤销" in refused.rows[1].reason
    assert "应晚于成立日期 2020-03-01" in refused.rows[2].reason
    assert "晚于今天" in refused.rows[3].reason
    # the export writes the date, and export -> import changes nothing
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            body, count = export.export_file(conn, ADMIN, "party_organisation", "csv")
    finally:
        engine.dispose()
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0].endswith(",成立日期,撤销日期")
    assert any(line.startswith("P-TEST-1,") and line.endswith(",2020-03-01,2025-09-01") for line in lines)
    path = tmp_path / "export.csv"
    path.write_bytes(body)
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            again = load.import_file(conn, ADMIN, "party_organisation", path)
    finally:
        engine.dispose()
    assert again.rows_read == count == again.unchanged


def test_an_organisation_dissolved_in_the_app_exports_its_date(served, tmp_path):
    url = served["url"]
    (code,) = _rows(url, f"SELECT min(code) FROM party_organisation WHERE kind = 'grid_branch' "
                         f"AND starts_with(unit_code, '{STREETS[0]}')")[0]
    with _client(served, "street1") as street:
        done = street.post(f"/registry/party-organisations/{code}/dissolve",
                           json={"on_date": "2026-06-30", "reason": "网格调整"})
        exported = street.get("/registry/party_organisation/export.csv").text
    assert done.status_code == 200, done.text
    assert [line for line in exported.splitlines() if line.startswith(f"{code},")][0].endswith(",2026-06-30")


# --- the demo's ticket histories do not all close ------------------------------------------------------------

def test_the_demo_loops_do_not_all_close_and_resolution_differs_between_companies(city_db):
    stuck, unresolved, reopened_open, overdue = _rows(city_db, """
        SELECT count(*) FILTER (WHERE t.state = 'in_progress' AND t.handled_at IS NULL AND t.send_back_count = 0
                                AND t.reopen_count = 0),
               count(*) FILTER (WHERE t.state = 'in_progress' AND t.send_back_count = 1 AND t.reopen_count = 0),
               count(*) FILTER (WHERE t.state IN ('dispatched', 'in_progress', 'handled') AND t.reopen_count = 1),
               count(*) FILTER (WHERE t.state IN ('dispatched', 'in_progress', 'handled') AND t.due_at < now())
        FROM ticket t""")[0]
    assert stuck > 0 and unresolved > 0 and reopened_open > 0 and overdue > 0
    rates = [rate for (rate,) in _rows(city_db, """
        SELECT d.resolution_rate FROM company_evaluation e JOIN evaluation_detail d ON d.evaluation_id = e.id
        WHERE d.resolution_rate IS NOT NULL""")]
    assert len(rates) >= 3 and min(rates) < 100 and len({round(rate, 1) for rate in rates}) >= 3
