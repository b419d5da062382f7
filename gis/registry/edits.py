"""Editing the registry in the app (在线维护), by the people responsible: one function per common edit, each a
single audited action (who, when, old, new, reason) inside the caller's transaction.

Every edit goes through the registry kind's own parsers and `check` (gis.registry.kinds) and its `save`, which
changes dated versions only through gis.registry.history — the same rules as an import row, never a second copy.
What an edit adds is its shape (one field or two, a date and a reason) and the scope answer: a unit outside the
caller's scope is NotFound, with the same reason as an unknown one.

A property company edits only its own basic information, and only by proposal (`propose_company_info`): it is
stored pending, and changes the company when a street office (of a street where the company manages a compound)
or the administrator approves it; a rejection needs its reason.

All functions take a synchronous SQLAlchemy connection (an API route runs them through `AsyncConnection.run_sync`).
"""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis.access.audit import record_change
from gis.access.auth import Principal
from gis.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.registry import history
from gis.registry.kinds import OUT_OF_SCOPE, Context, Kind, get_kind
from gis.registry.scope import Scope
from gis.registry.values import parse_date, show

COMPANY_INFO_FIELDS = ("contact_name", "contact_phone", "has_party_org", "party_work_only")
"""What a property company may propose about itself (its name and credit code stay the administrator's)."""

REVIEW_ROLES = ("admin", "street")
MAX_CHANGES = 500


# --- shared steps ------------------------------------------------------------------------------------------------

def _raw(value) -> str:
    """A form's value written as the import's cell would be, so the kind's parser reads it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def parse_fields(kind: Kind, values: dict) -> dict:
    """Each given field read by the kind's own column parser (empty: the column's default, or refused when the
    column is required); the reason names the column."""
    parsed = {}
    for name, value in values.items():
        column = kind.column(name)
        cell = _raw(value).strip()
        if not cell:
            if column.required:
                raise InvalidInput(f"“{column.header}”不能为空")
            parsed[name] = column.default
            continue
        try:
            parsed[name] = column.parse(cell)
        except InvalidInput as error:
            raise InvalidInput(f"“{column.header}”：{error}") from None
    return parsed


def _reason(reason: str | None) -> str:
    text_ = (reason or "").strip()
    if not text_:
        raise InvalidInput("请写明变更原因")
    if len(text_) > 500:
        raise InvalidInput("变更原因最多 500 字")
    return text_


def _day(value, what: str = "变更日期") -> date:
    day = value if isinstance(value, date) else parse_date(_raw(value))
    if day > history.today():
        raise InvalidInput(f"{what} {day.isoformat()} 晚于今天：只能登记已经发生的变更")
    return day


def _context(conn: Connection, principal: Principal) -> Context:
    return Context(conn=conn, principal=principal, scope=Scope(conn, principal))


def _checked(ctx: Context, kind: Kind, row: dict, old: dict | None) -> None:
    problem = kind.check(ctx, row, old)
    if problem:
        raise InvalidInput(problem)


def _one(kind: Kind, ctx: Context, key: tuple) -> dict | None:
    return kind.fetch(ctx, [key]).get(key)


def _in_scope(ctx: Context, level: str, code_: str, what: str) -> None:
    if code_ not in ctx.scope.codes(level):
        raise NotFound(OUT_OF_SCOPE.format(what=what, code=code_))


# --- a compound's management ---------------------------------------------------------------------------------------

def change_mode(conn: Connection, principal: Principal, compound_code: str, management_mode: str, on_date,
                reason: str) -> dict:
    """A change of the compound's management mode without a new company (a new company is a takeover,
    history.take_over): a dated version from `on_date`; without a company for no service or self-management."""
    ctx = _context(conn, principal)
    _in_scope(ctx, "compound", compound_code, "小区")
    kind = get_kind("compound_attributes")
    old = _one(kind, ctx, (compound_code,))
    if old is None:
        raise NotFound(OUT_OF_SCOPE.format(what="小区", code=compound_code))
    mode = parse_fields(kind, {"management_mode": management_mode})["management_mode"]
    if mode == old["management_mode"]:
        raise InvalidInput("管理方式没有变化：更换物业企业请登记接管")
    company = None if mode in ("none", "self_managed") else old["company_credit_code"]
    row = {**old, "management_mode": mode, "company_credit_code": company, "changed_on": _day(on_date),
           "change_reason": _reason(reason)}
    _checked(ctx, kind, row, old)
    kind.save(ctx, row, old)  # history.change_management: the versions, the current columns and the audit row
    return {"compound_code": compound_code, "management_mode": mode, "company_credit_code": company,
            "valid_from": row["changed_on"].isoformat(), "reason": row["change_reason"]}


# --- an owners' committee's new term -----------------------------------------------------------------------------

def new_term(conn: Connection, principal: Principal, compound_code: str, values: dict, reason: str) -> dict:
    """换届: a new term of the compound's owners' committee (term start and end, members, party members, chair and
    whether a party member), refused with the reason when it overlaps a stored term."""
    ctx = _context(conn, principal)
    _in_scope(ctx, "compound", compound_code, "小区")
    why = _reason(reason)
    kind = get_kind("owners_committee")
    fields = [c.field for c in kind.columns if c.field != "compound_code"]
    row = {"compound_code": compound_code, **parse_fields(kind, {name: values.get(name) for name in fields})}
    key = kind.key_of(row)
    if _one(kind, ctx, key) is not None:
        raise InvalidInput(f"小区 {compound_code} 任期开始日期为 {row['term_start'].isoformat()} 的一届已登记")
    _checked(ctx, kind, row, None)
    before = history.committees_as_of(conn, history.today(), [compound_code]).get(compound_code)
    kind.save(ctx, row, None)
    record_change(conn, principal, kind.name, " / ".join(show(v) for v in key), "new_term",
                  None if before is None else {name: before[name] for name in fields}, row, why)
    return {name: show(value) for name, value in row.items()}


# --- grid workers ------------------------------------------------------------------------------------------------

def _worker(ctx: Context, worker_id: int) -> dict:
    phone = ctx.conn.execute(text("SELECT phone FROM grid_worker WHERE id = :id"), {"id": worker_id}).scalar()
    kind = get_kind("grid_worker")
    old = None if phone is None else _one(kind, ctx, (phone,))
    # one who left is in the scope of the grid they served last (leaving again says so; joining brings them back)
    if old is None or old["id"] != worker_id or (old["grid_code"] or old["last_grid"]) not in ctx.scope.codes("grid"):
        raise NotFound(f"网格员 {worker_id} 不存在或不在您的管辖范围内")
    return old


def join_grid(conn: Connection, principal: Principal, grid_code: str, on_date, reason: str,
              worker_id: int | None = None, person: dict | None = None) -> dict:
    """A grid worker joins `grid_code` from `on_date`: a worker already registered (`worker_id`) moves there (the
    open assignment closes), a new one (`person`: name, phone, party member, part-time, company) is registered."""
    ctx = _context(conn, principal)
    kind = get_kind("grid_worker")
    day, why = _day(on_date, "任职日期"), _reason(reason)
    grid_code = parse_fields(kind, {"grid_code": grid_code})["grid_code"]
    _in_scope(ctx, "grid", grid_code, "网格")
    if worker_id is not None:
        old = _worker(ctx, worker_id)
        if old["grid_code"] == grid_code:
            raise InvalidInput(f"该网格员已在网格 {grid_code} 任职")
        row = {**old, "grid_code": grid_code, "since": day}
    else:
        person = person or {}
        names = ("name", "phone", "is_party_member", "is_part_time", "company_credit_code")
        row = {**parse_fields(kind, {name: person.get(name) for name in names}), "grid_code": grid_code,
               "since": day}
        old = _one(kind, ctx, (row["phone"],))
        if old is not None:
            raise InvalidInput(f"手机号 {row['phone']} 已登记为网格员：请选择该网格员调入")
    _checked(ctx, kind, row, old)
    kind.save(ctx, row, old)
    saved = _one(kind, ctx, (row["phone"],))
    record_change(conn, principal, kind.name, row["phone"], "join",
                  None if old is None else {"grid_code": old["grid_code"], "since": old["since"]},
                  {"grid_code": grid_code, "since": day, "name": row["name"]}, why)
    return {"id": saved["id"], "name": saved["name"], "grid_code": grid_code, "since": day.isoformat()}


def leave_grid(conn: Connection, principal: Principal, worker_id: int, on_date, reason: str) -> dict:
    """A grid worker leaves the grid from `on_date`: the open assignment ends (a dated version)."""
    ctx = _context(conn, principal)
    old = _worker(ctx, worker_id)
    day, why = _day(on_date, "离任日期"), _reason(reason)
    if old["since"] is None:
        raise InvalidInput("该网格员已离任")
    if day <= old["since"]:
        raise InvalidInput(f"离任日期 {day.isoformat()} 应晚于任职日期 {old['since'].isoformat()}")
    history.end_assignment(conn, worker_id, day)
    record_change(conn, principal, "grid_worker", old["phone"], "leave",
                  {"grid_code": old["grid_code"], "since": old["since"]}, {"grid_code": None, "until": day}, why)
    return {"id": worker_id, "grid_code": old["grid_code"], "until": day.isoformat()}


# --- party organisations -------------------------------------------------------------------------------------------

def _organisation(ctx: Context, organisation_code: str) -> dict:
    kind = get_kind("party_organisation")
    old = _one(kind, ctx, (organisation_code,))
    if old is None or kind.check(ctx, old, old):
        raise NotFound(OUT_OF_SCOPE.format(what="党组织", code=organisation_code))
    return old


def change_secretary(conn: Connection, principal: Principal, organisation_code: str, secretary_name: str,
                     secretary_phone: str | None, reason: str) -> dict:
    """A party organisation's new secretary (name and phone)."""
    ctx = _context(conn, principal)
    kind = get_kind("party_organisation")
    old = _organisation(ctx, organisation_code)
    why = _reason(reason)
    new = parse_fields(kind, {"secretary_name": secretary_name, "secretary_phone": secretary_phone})
    before = {name: old[name] for name in new}
    if new == before:
        raise InvalidInput("书记信息没有变化")
    row = {**old, **new}
    _checked(ctx, kind, row, old)
    kind.save(ctx, row, old)
    record_change(conn, principal, kind.name, organisation_code, "secretary", before, new, why)
    return {"code": organisation_code, **new}


def dissolve(conn: Connection, principal: Principal, organisation_code: str, on_date, reason: str) -> dict:
    """撤销: the party organisation's period ends at `on_date` (it no longer exists from that day)."""
    ctx = _context(conn, principal)
    _organisation(ctx, organisation_code)
    day, why = _day(on_date, "撤销日期"), _reason(reason)
    since = history.open_party_period(conn, organisation_code)
    if since is None:
        raise InvalidInput(f"党组织 {organisation_code} 已撤销")
    if day <= since:
        raise InvalidInput(f"撤销日期 {day.isoformat()} 应晚于成立日期 {since.isoformat()}")
    history.end_party_period(conn, organisation_code, day)
    record_change(conn, principal, "party_organisation", organisation_code, "dissolve", {"valid_from": since},
                  {"valid_to": day}, why)
    return {"code": organisation_code, "valid_from": since.isoformat(), "valid_to": day.isoformat()}


# --- a property company's own basic information, by proposal ------------------------------------------------------

def _company_row(conn: Connection, company_id: int) -> dict:
    kind = get_kind("property_company")
    credit = conn.execute(text("SELECT credit_code FROM property_company WHERE id = :id"), {"id": company_id}).scalar()
    row = None if credit is None else kind.fetch(Context(conn=conn, principal=None, scope=None), [(credit,)]).get(
        (credit,))
    if row is None:
        raise NotFound("物业企业不存在")
    return row


def _company_check(conn: Connection, principal: Principal, row: dict, old: dict) -> None:
    # The company kind's check reads no scope (only the administrator imports companies), so the proposal is
    # checked by it without one.
    problem = get_kind("property_company").check(Context(conn=conn, principal=principal, scope=None), row, old)
    if problem:
        raise InvalidInput(problem)


def own_company(conn: Connection, principal: Principal) -> dict:
    """A property company's own basic information and its newest proposal (pending or decided)."""
    if principal.role != "property_company" or principal.company_id is None:
        raise Forbidden("只有物业企业用户可以查看和提交本企业的基本信息")
    row = _company_row(conn, principal.company_id)
    proposals = _proposals(conn, "p.property_company_id = :company", {"company": principal.company_id}, 1)
    return {"company": {name: row[name] for name in ("credit_code", "name", *COMPANY_INFO_FIELDS)},
            "latest_proposal": proposals[0] if proposals else None}


def propose_company_info(conn: Connection, principal: Principal, values: dict) -> dict:
    """The company proposes its own basic information: stored pending, the company itself unchanged."""
    if principal.role != "property_company" or principal.company_id is None:
        raise Forbidden("只有物业企业用户可以提交本企业的基本信息")
    kind = get_kind("property_company")
    old = _company_row(conn, principal.company_id)
    new = parse_fields(kind, {name: values.get(name) for name in COMPANY_INFO_FIELDS if name in values})
    if not new:
        raise InvalidInput("没有要修改的信息")
    _company_check(conn, principal, {**old, **new}, old)
    before = {name: old[name] for name in new}
    if new == before:
        raise InvalidInput("提交的信息与现有信息相同")
    if conn.execute(text("SELECT 1 FROM registry_proposal WHERE property_company_id = :id AND state = 'pending'"),
                    {"id": principal.company_id}).first():
        raise Conflict("本企业已有一份待审核的信息变更，请等待街道审核后再提交")
    proposal_id = conn.execute(text("""
        INSERT INTO registry_proposal (property_company_id, old, proposed, proposed_by, proposed_by_id)
        VALUES (:company, CAST(:old AS jsonb), CAST(:new AS jsonb), :who, :who_id) RETURNING id"""),
        {"company": principal.company_id, "old": json.dumps(before, ensure_ascii=False),
         "new": json.dumps(new, ensure_ascii=False), "who": principal.username,
         "who_id": principal.user_id}).scalar_one()
    record_change(conn, principal, "property_company_proposal", old["credit_code"], "propose", before, new)
    return _proposals(conn, "p.id = :id", {"id": proposal_id}, 1)[0]


_PROPOSAL_SELECT = """
    SELECT p.id, pc.credit_code, pc.name AS company_name, p.old, p.proposed, p.state, p.proposed_at, p.proposed_by,
           p.decided_at, p.decided_by, p.decision_reason
    FROM registry_proposal p JOIN property_company pc ON pc.id = p.property_company_id"""


def _proposals(conn: Connection, where: str, params: dict, limit: int = 200) -> list[dict]:
    rows = conn.execute(text(f"{_PROPOSAL_SELECT} WHERE {where} ORDER BY p.id DESC LIMIT :limit"),
                        {**params, "limit": limit}).mappings()
    return [dict(row) for row in rows]


def _review_scope(conn: Connection, principal: Principal) -> tuple[str, dict]:
    """Which companies' proposals the caller reviews: all (admin), or those managing a compound in the street."""
    if principal.role not in REVIEW_ROLES:
        raise Forbidden("企业信息变更只能由街道或管理员审核")
    if principal.role == "admin":
        return "TRUE", {}
    compounds = sorted(Scope(conn, principal).codes("compound"))
    return ("EXISTS (SELECT 1 FROM compound c WHERE c.property_company_id = p.property_company_id "
            "AND c.valid_to IS NULL AND c.code = ANY(:compounds))"), {"compounds": compounds}


def proposals(conn: Connection, principal: Principal, state: str | None = "pending") -> list[dict]:
    """Proposals newest first: a company its own, a street those of companies serving it, the administrator all."""
    if state is not None and state not in ("pending", "approved", "rejected"):
        raise InvalidInput("状态应为 pending、approved 或 rejected")
    if principal.role == "property_company" and principal.company_id is not None:
        where, params = "p.property_company_id = :company", {"company": principal.company_id}
    else:
        where, params = _review_scope(conn, principal)
    if state is not None:
        where, params = f"{where} AND p.state = :state", {**params, "state": state}
    return _proposals(conn, where, params)


def decide(conn: Connection, principal: Principal, proposal_id: int, approve: bool, reason: str | None) -> dict:
    """Approve (the company's record changes, through the company kind's check and save, audited) or reject (with
    its reason) a pending proposal in the caller's review scope."""
    where, params = _review_scope(conn, principal)
    found = _proposals(conn, f"p.id = :id AND {where}", {**params, "id": proposal_id}, 1)
    if not found:
        raise NotFound(f"企业信息变更申请 {proposal_id} 不存在或不在您的管辖范围内")
    proposal = found[0]
    if proposal["state"] != "pending":
        raise Conflict(f"该申请已{'通过' if proposal['state'] == 'approved' else '驳回'}，不能再次审核")
    if not approve:
        why = _reason(reason)
    else:
        why = (reason or "").strip() or "审核通过"
    company_id = conn.execute(text("SELECT property_company_id FROM registry_proposal WHERE id = :id"),
                              {"id": proposal_id}).scalar_one()
    if approve:
        kind = get_kind("property_company")
        old = _company_row(conn, company_id)
        new = parse_fields(kind, proposal["proposed"])
        row = {**old, **new}
        _company_check(conn, principal, row, old)
        kind.save(Context(conn=conn, principal=principal, scope=None), row, old)
        record_change(conn, principal, kind.name, old["credit_code"], "update", {name: old[name] for name in new},
                      new, why)
    else:
        record_change(conn, principal, "property_company_proposal", proposal["credit_code"], "reject",
                      proposal["old"], proposal["proposed"], why)
    conn.execute(text("UPDATE registry_proposal SET state = :state, decided_at = now(), decided_by = :who, "
                      "decision_reason = :why WHERE id = :id"),
                 {"state": "approved" if approve else "rejected", "who": principal.username, "why": why,
                  "id": proposal_id})
    return _proposals(conn, "p.id = :id", {"id": proposal_id}, 1)[0]


# --- what the forms show, and the change log ------------------------------------------------------------------

def compound_parties(conn: Connection, principal: Principal, compound_code: str) -> dict:
    """What the compound's edit forms start from: its management, its committee terms, the grid workers of its
    community's grids and the party organisations of the compound, its grids and its community."""
    ctx = _context(conn, principal)
    _in_scope(ctx, "compound", compound_code, "小区")
    management = _one(get_kind("compound_attributes"), ctx, (compound_code,))
    terms = conn.execute(text(f"SELECT * FROM {history.COMMITTEE_TERMS} t WHERE compound_code = :code "
                              "ORDER BY term_start DESC"), {"code": compound_code}).mappings()
    community = conn.execute(text("SELECT community_code FROM compound WHERE code = :code AND valid_to IS NULL"),
                             {"code": compound_code}).scalar_one()
    workers = conn.execute(text(f"""
        SELECT w.id, w.name, w.phone, w.grid_code, w.is_part_time, a.valid_from AS since
        FROM grid_worker w JOIN grid g ON g.code = w.grid_code AND g.valid_to IS NULL
        JOIN {history.ASSIGNMENTS} a ON a.grid_worker_id = w.id AND a.valid_to IS NULL
        WHERE g.community_code = :community ORDER BY w.grid_code, w.id"""), {"community": community}).mappings()
    grids = [code_ for (code_,) in conn.execute(text(
        "SELECT code FROM grid WHERE community_code = :community AND valid_to IS NULL ORDER BY code"),
        {"community": community})]
    organisations = conn.execute(text(f"""
        SELECT p.code, p.kind, p.name, p.unit_code, p.secretary_name, p.secretary_phone
        FROM party_organisation p JOIN {history.PARTY_PERIODS} e ON e.organisation_code = p.code
             AND e.valid_to IS NULL
        WHERE p.unit_code = ANY(:units) ORDER BY p.code"""),
        {"units": [compound_code, community, *grids]}).mappings()
    return {"compound_code": compound_code, "community_code": community, "grids": grids,
            "management": None if management is None else {
                "management_mode": management["management_mode"],
                "company_credit_code": management["company_credit_code"],
                "valid_from": show(management["changed_on"])},
            "terms": [{k: show(v) if isinstance(v, date) else v for k, v in row.items()} for row in terms],
            "grid_workers": [{**row, "since": show(row["since"])} for row in workers],
            "party_organisations": [dict(row) for row in organisations]}


def changes(conn: Connection, principal: Principal, limit: int = 100, before_id: int | None = None) -> list[dict]:
    """The change log, newest first: the administrator all of it, a street or community the changes of units in
    its scope (a record's key starts with its unit's code; grid workers by their grid, party organisations by their
    unit, companies by the compounds they manage there). Page with `before_id`."""
    if not 1 <= limit <= MAX_CHANGES:
        raise InvalidInput(f"每页条数应为 1 至 {MAX_CHANGES}")
    scope = Scope(conn, principal)
    where, params = ["TRUE"], {"limit": limit}
    if not scope.whole_city:
        units = sorted(set().union(*(scope.codes(level) for level in ("community", "grid", "compound"))))
        where.append("""(split_part(a.record_key, ' / ', 1) = ANY(:units)
            OR (a.subject = 'party_organisation' AND EXISTS (SELECT 1 FROM party_organisation p
                WHERE p.code = a.record_key AND p.unit_code = ANY(:units)))
            OR (a.subject = 'grid_worker' AND EXISTS (SELECT 1 FROM grid_worker w
                WHERE w.phone = a.record_key AND (w.grid_code = ANY(:units) OR EXISTS (
                    SELECT 1 FROM grid_worker_assignment x WHERE x.grid_worker_id = w.id
                    AND x.grid_code = ANY(:units)))))
            OR (a.subject IN ('property_company', 'property_company_proposal') AND EXISTS (
                SELECT 1 FROM property_company pc JOIN compound c ON c.property_company_id = pc.id
                WHERE pc.credit_code = a.record_key AND c.valid_to IS NULL AND c.code = ANY(:units))))""")
        params["units"] = units
    if before_id is not None:
        where.append("a.id < :before_id")
        params["before_id"] = before_id
    rows = conn.execute(text(f"""
        SELECT a.id, a.at, a.username, a.role, a.subject, a.record_key, a.action, a.old, a.new, a.reason
        FROM audit_change a WHERE {' AND '.join(where)} ORDER BY a.id DESC LIMIT :limit"""), params).mappings()
    return [dict(row) for row in rows]
