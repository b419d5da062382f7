"""Dated versions of the registry (历史): a compound's management mode and company, owners' committee terms
(换届), grid workers' assignments and party organisations' existence; "as of" a date, takeovers (接管), and the
committees whose term is ending.

The versions live in their own tables (migration 0012); the current columns everything else reads
(`compound.management_mode`, `compound.property_company_id`, `owners_committee`, `grid_worker.grid_code`) hold
the version open today, and only the functions here change both together. A grid worker with no open assignment
(one who left) has no `grid_code`: every list of current grid workers reads that column, so one who left shows
nowhere, while the as-of functions still find them on the days they served. A unit loaded without versions (the
demo generator, a layer import) counts as one version open since its start: the `*_VERSIONS` fragments add those
implicit versions, and `materialise_*` writes them down before the first change, so a change never loses them.

All functions take a synchronous SQLAlchemy connection (an API route runs them through `AsyncConnection.run_sync`).
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis.access.audit import record_change
from gis.access.auth import Principal
from gis.errors import InvalidInput, NotFound
from gis.registry.scope import Scope
from gis.times import BEIJING

EARLIEST = date(2000, 1, 1)
"""The start given to a version whose real start is not known (as the layers' `valid_from` default)."""

EXPIRY_WINDOW_DAYS = 90

MANAGEMENT_VERSIONS = """(
    SELECT compound_code, valid_from, valid_to, management_mode, property_company_id, reason
    FROM compound_management_version
    UNION ALL
    SELECT c.code, c.valid_from, NULL::date, c.management_mode, c.property_company_id, NULL::text
    FROM compound c
    WHERE c.valid_to IS NULL
      AND NOT EXISTS (SELECT 1 FROM compound_management_version v WHERE v.compound_code = c.code))"""

COMMITTEE_TERMS = """(
    SELECT compound_code, term_start, term_end, member_count, party_member_count, chair_name,
           chair_is_party_member, members
    FROM owners_committee_term
    UNION ALL
    SELECT oc.compound_code, oc.formed_on, oc.term_end, oc.member_count, oc.party_member_count, oc.chair_name,
           oc.chair_is_party_member, NULL::text
    FROM owners_committee oc
    WHERE NOT EXISTS (SELECT 1 FROM owners_committee_term t WHERE t.compound_code = oc.compound_code))"""

ASSIGNMENTS = f"""(
    SELECT grid_worker_id, grid_code, valid_from, valid_to FROM grid_worker_assignment
    UNION ALL
    SELECT w.id, w.grid_code, DATE '{EARLIEST.isoformat()}', NULL::date
    FROM grid_worker w
    WHERE w.grid_code IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM grid_worker_assignment a WHERE a.grid_worker_id = w.id))"""

PARTY_PERIODS = f"""(
    SELECT organisation_code, valid_from, valid_to FROM party_organisation_period
    UNION ALL
    SELECT p.code, coalesce(p.founded_on, DATE '{EARLIEST.isoformat()}'), NULL::date
    FROM party_organisation p
    WHERE NOT EXISTS (SELECT 1 FROM party_organisation_period e WHERE e.organisation_code = p.code))"""


def today() -> date:
    """Today in Beijing: the day whose open versions the current columns hold."""
    from datetime import datetime

    return datetime.now(BEIJING).date()


# --- writing the implicit versions down ---------------------------------------------------------------------

def materialise_management(conn: Connection, compound_code: str) -> None:
    """Write a compound's implicit version (its current columns since its start) when it has none yet."""
    conn.execute(text("""
        INSERT INTO compound_management_version (compound_code, valid_from, management_mode, property_company_id)
        SELECT c.code, c.valid_from, c.management_mode, c.property_company_id FROM compound c
        WHERE c.code = :code AND c.valid_to IS NULL
          AND NOT EXISTS (SELECT 1 FROM compound_management_version v WHERE v.compound_code = c.code)"""),
        {"code": compound_code})


def materialise_terms(conn: Connection, compound_code: str) -> None:
    """Write a compound's committee (loaded without terms) down as its one term."""
    materialise_terms_many(conn, [compound_code])


def materialise_terms_many(conn: Connection, compound_codes: list[str]) -> None:
    """materialise_terms for many compounds in one statement."""
    conn.execute(text("""
        INSERT INTO owners_committee_term (compound_code, term_start, term_end, member_count, party_member_count,
                                           chair_name, chair_is_party_member)
        SELECT compound_code, formed_on, term_end, member_count, party_member_count, chair_name,
               chair_is_party_member
        FROM owners_committee oc WHERE oc.compound_code = ANY(:codes)
          AND NOT EXISTS (SELECT 1 FROM owners_committee_term t WHERE t.compound_code = oc.compound_code)"""),
        {"codes": list(compound_codes)})


def materialise_assignment(conn: Connection, worker_id: int) -> None:
    """Write a grid worker's implicit assignment down."""
    conn.execute(text(f"""
        INSERT INTO grid_worker_assignment (grid_worker_id, grid_code, valid_from)
        SELECT w.id, w.grid_code, DATE '{EARLIEST.isoformat()}' FROM grid_worker w
        WHERE w.id = :id AND w.grid_code IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM grid_worker_assignment a WHERE a.grid_worker_id = w.id)"""),
        {"id": worker_id})


# --- changing versions (the one place the current columns follow them) -------------------------------------

def open_management(conn: Connection, compound_code: str) -> dict | None:
    """The open version of a compound's management (mode, company id, valid_from, reason)."""
    row = conn.execute(text(f"""
        SELECT management_mode, property_company_id, valid_from, reason FROM {MANAGEMENT_VERSIONS} v
        WHERE compound_code = :code AND valid_to IS NULL"""), {"code": compound_code}).mappings().first()
    return dict(row) if row else None


def change_management(conn: Connection, principal: Principal, compound_code: str, mode: str,
                      company_id: int | None, on_date: date, reason: str | None) -> None:
    """Close the compound's open management version at `on_date` (valid until then, exclusive) and open the new
    one from it; the current columns follow. Audited."""
    if on_date > today():
        raise InvalidInput(f"变更日期 {on_date.isoformat()} 晚于今天：只能登记已经发生的变更")
    current = open_management(conn, compound_code)
    if current is None:
        raise NotFound(f"小区 {compound_code} 不存在或不在您的管辖范围内")
    if on_date <= current["valid_from"]:
        raise InvalidInput(f"变更日期 {on_date.isoformat()} 应晚于当前管理方式的开始日期 "
                           f"{current['valid_from'].isoformat()}")
    materialise_management(conn, compound_code)
    conn.execute(text("UPDATE compound_management_version SET valid_to = :on WHERE compound_code = :code "
                      "AND valid_to IS NULL"), {"on": on_date, "code": compound_code})
    conn.execute(text("""
        INSERT INTO compound_management_version (compound_code, valid_from, management_mode, property_company_id,
                                                 reason)
        VALUES (:code, :on, :mode, :company, :reason)"""),
        {"code": compound_code, "on": on_date, "mode": mode, "company": company_id, "reason": reason})
    conn.execute(text("UPDATE compound SET management_mode = :mode, property_company_id = :company "
                      "WHERE code = :code AND valid_to IS NULL"),
                 {"mode": mode, "company": company_id, "code": compound_code})
    record_change(conn, principal, "compound_management", compound_code, "version",
                  {"management_mode": current["management_mode"], "property_company_id":
                   current["property_company_id"], "valid_from": current["valid_from"]},
                  {"management_mode": mode, "property_company_id": company_id, "valid_from": on_date}, reason)


def take_over(conn: Connection, principal: Principal, compound_code: str, new_company_credit_code: str,
              on_date: date, reason: str) -> dict:
    """接管: the company with `new_company_credit_code` takes over the compound from `on_date`, in one action
    (the old version closed, the new one opened, the current columns set, the change audited). The mode becomes
    community-led for a community-led company, professional otherwise. Out of scope is NotFound."""
    if not reason or not reason.strip():
        raise InvalidInput("接管必须写明原因")
    scope = Scope(conn, principal)
    if compound_code not in scope.codes("compound"):
        raise NotFound(f"小区 {compound_code} 不存在或不在您的管辖范围内")
    company = conn.execute(text("SELECT id, is_community_led FROM property_company WHERE credit_code = :code"),
                           {"code": new_company_credit_code}).first()
    if company is None:
        raise InvalidInput(f"物业企业统一社会信用代码 {new_company_credit_code} 未登记")
    mode = "community_led" if company.is_community_led else "professional"
    current = open_management(conn, compound_code)
    if current and current["property_company_id"] == company.id and current["management_mode"] == mode:
        raise InvalidInput(f"小区 {compound_code} 已由该企业管理")
    change_management(conn, principal, compound_code, mode, company.id, on_date, reason.strip())
    return {"compound_code": compound_code, "management_mode": mode, "property_company_id": company.id,
            "valid_from": on_date.isoformat(), "reason": reason.strip()}


def sync_current_committee(conn: Connection, compound_code: str) -> None:
    """Make `owners_committee` hold the compound's term with the latest start (none: no row)."""
    sync_current_committees(conn, [compound_code])


def sync_current_committees(conn: Connection, compound_codes: list[str]) -> None:
    """sync_current_committee for many compounds, in two statements (in the order of the codes given)."""
    codes = list(compound_codes)
    conn.execute(text("""
        DELETE FROM owners_committee oc WHERE oc.compound_code = ANY(:codes)
          AND NOT EXISTS (SELECT 1 FROM owners_committee_term t WHERE t.compound_code = oc.compound_code)"""),
        {"codes": codes})
    conn.execute(text("""
        INSERT INTO owners_committee (compound_code, formed_on, term_end, member_count, party_member_count,
                                      chair_name, chair_is_party_member)
        SELECT latest.compound_code, latest.term_start, latest.term_end, latest.member_count,
               latest.party_member_count, latest.chair_name, latest.chair_is_party_member
        FROM unnest(CAST(:codes AS text[])) WITH ORDINALITY AS c(code, n)
        CROSS JOIN LATERAL (SELECT * FROM owners_committee_term t WHERE t.compound_code = c.code
                            ORDER BY t.term_start DESC LIMIT 1) latest
        ORDER BY c.n
        ON CONFLICT (compound_code) DO UPDATE SET formed_on = EXCLUDED.formed_on, term_end = EXCLUDED.term_end,
            member_count = EXCLUDED.member_count, party_member_count = EXCLUDED.party_member_count,
            chair_name = EXCLUDED.chair_name, chair_is_party_member = EXCLUDED.chair_is_party_member"""),
        {"codes": codes})


def move_grid_worker(conn: Connection, worker_id: int, grid_code: str, on_date: date) -> None:
    """Close the worker's open assignment at `on_date` and open one on `grid_code`; `grid_worker.grid_code`
    follows."""
    materialise_assignment(conn, worker_id)
    conn.execute(text("UPDATE grid_worker_assignment SET valid_to = :on WHERE grid_worker_id = :id "
                      "AND valid_to IS NULL"), {"on": on_date, "id": worker_id})
    conn.execute(text("INSERT INTO grid_worker_assignment (grid_worker_id, grid_code, valid_from) "
                      "VALUES (:id, :grid, :on)"), {"id": worker_id, "grid": grid_code, "on": on_date})
    conn.execute(text("UPDATE grid_worker SET grid_code = :grid WHERE id = :id"), {"grid": grid_code, "id": worker_id})


def end_assignment(conn: Connection, worker_id: int, on_date: date) -> None:
    """The worker leaves: the open assignment ends at `on_date` (exclusive) and `grid_worker.grid_code` is emptied,
    so no list of current workers shows them; the as-of functions still count them until `on_date`."""
    materialise_assignment(conn, worker_id)
    conn.execute(text("UPDATE grid_worker_assignment SET valid_to = :on WHERE grid_worker_id = :id "
                      "AND valid_to IS NULL"), {"on": on_date, "id": worker_id})
    conn.execute(text("UPDATE grid_worker SET grid_code = NULL WHERE id = :id"), {"id": worker_id})


def open_party_period(conn: Connection, organisation_code: str) -> date | None:
    """The start of the organisation's open period (None: it is dissolved, or unknown)."""
    return conn.execute(text(f"SELECT valid_from FROM {PARTY_PERIODS} e WHERE organisation_code = :code "
                             "AND valid_to IS NULL"), {"code": organisation_code}).scalar()


def end_party_period(conn: Connection, organisation_code: str, on_date: date) -> None:
    """Dissolution (撤销): the organisation's open period ends at `on_date` (exclusive)."""
    conn.execute(text(f"""
        INSERT INTO party_organisation_period (organisation_code, valid_from)
        SELECT p.code, coalesce(p.founded_on, DATE '{EARLIEST.isoformat()}') FROM party_organisation p
        WHERE p.code = :code
          AND NOT EXISTS (SELECT 1 FROM party_organisation_period e WHERE e.organisation_code = p.code)"""),
        {"code": organisation_code})
    conn.execute(text("UPDATE party_organisation_period SET valid_to = :on WHERE organisation_code = :code "
                      "AND valid_to IS NULL"), {"on": on_date, "code": organisation_code})


# --- as of a date --------------------------------------------------------------------------------------------

def _in_force(alias: str, start: str = "valid_from", end: str = "valid_to") -> str:
    return f"{alias}.{start} <= :day AND ({alias}.{end} IS NULL OR {alias}.{end} > :day)"


def management_as_of(conn: Connection, day: date, compound_codes: list[str] | None = None) -> dict[str, dict]:
    """{compound code: {management_mode, property_company_id}} in force on `day`."""
    where = "" if compound_codes is None else " AND v.compound_code = ANY(:codes)"
    rows = conn.execute(text(f"SELECT compound_code, management_mode, property_company_id FROM "
                             f"{MANAGEMENT_VERSIONS} v WHERE {_in_force('v')}{where}"),
                        {"day": day, "codes": compound_codes}).mappings()
    return {row["compound_code"]: {"management_mode": row["management_mode"],
                                   "property_company_id": row["property_company_id"]} for row in rows}


def committees_as_of(conn: Connection, day: date, compound_codes: list[str] | None = None) -> dict[str, dict]:
    """{compound code: the committee term in force on `day`} (compounds without one are absent)."""
    where = "" if compound_codes is None else " AND t.compound_code = ANY(:codes)"
    rows = conn.execute(text(f"SELECT * FROM {COMMITTEE_TERMS} t WHERE "
                             f"{_in_force('t', 'term_start', 'term_end')}{where} ORDER BY term_start"),
                        {"day": day, "codes": compound_codes}).mappings()
    return {row["compound_code"]: dict(row) for row in rows}


def grid_workers_as_of(conn: Connection, day: date, grid_code: str) -> list[dict]:
    """The grid workers serving `grid_code` on `day` (id, name, part-time or not), by id."""
    rows = conn.execute(text(f"""
        SELECT w.id, w.name, w.is_part_time FROM {ASSIGNMENTS} a JOIN grid_worker w ON w.id = a.grid_worker_id
        WHERE a.grid_code = :grid AND {_in_force('a')} ORDER BY w.id"""), {"day": day, "grid": grid_code})
    return [dict(row) for row in rows.mappings()]


def party_organisations_as_of(conn: Connection, day: date, unit_code: str | None = None) -> list[str]:
    """Codes of the party organisations existing on `day` (of one unit when given), sorted."""
    where = "" if unit_code is None else " AND p.unit_code = :unit"
    rows = conn.execute(text(f"""
        SELECT DISTINCT e.organisation_code FROM {PARTY_PERIODS} e
        JOIN party_organisation p ON p.code = e.organisation_code
        WHERE {_in_force('e')}{where} ORDER BY 1"""), {"day": day, "unit": unit_code})
    return [code for (code,) in rows]


# --- committees ending ---------------------------------------------------------------------------------------

def expiring_committees(conn: Connection, principal: Principal, day: date | None = None,
                        within_days: int = EXPIRY_WINDOW_DAYS) -> list[dict]:
    """Owners' committees whose current term has ended or ends within `within_days` of `day` (today), in the
    caller's communities: per community, then by term end. Each row says whether the term has ended."""
    day = day or today()
    scope = Scope(conn, principal)
    communities = scope.codes("community")
    rows = conn.execute(text("""
        SELECT cm.code AS community_code, cm.name AS community_name, c.code AS compound_code,
               c.name AS compound_name, oc.formed_on AS term_start, oc.term_end
        FROM owners_committee oc
        JOIN compound c ON c.code = oc.compound_code AND c.valid_to IS NULL
        JOIN community cm ON cm.code = c.community_code AND cm.valid_to IS NULL
        WHERE oc.term_end IS NOT NULL AND oc.term_end <= :limit AND cm.code = ANY(:communities)
        ORDER BY cm.code, oc.term_end, c.code"""),
        {"limit": day + timedelta(days=within_days), "communities": sorted(communities)}).mappings()
    return [{**row, "term_start": row["term_start"].isoformat(), "term_end": row["term_end"].isoformat(),
             "ended": row["term_end"] <= day, "days_left": (row["term_end"] - day).days} for row in rows]
