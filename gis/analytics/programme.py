"""The seed programmes' figures (红色物业 indicators): one declarative definition per figure, computed in SQL from
the registry's dated versions as of any date, per city, district, street or community, against configurable
targets (gis/settings.py, `ProgrammeSettings`, GRIDGOV_PROGRAMME_*).

This module is the one rule. The API (/analytics/programme, /analytics/gaps), the dashboard, the map's planner
overlay, the exports, the coverage table (gis/analytics/coverage.py) and the street report read their figures
and their mode sets from here.

Which management modes count:

- professional property service (专业化物业服务): `SERVICE_MODES`, a registered property company serves the
  compound — a market company (professional) or a community-led one (社区领办: set up by the community, registered
  like any other company). Entrusted (代管), self-managed (自管) and none do not count.
- an old estate (老旧小区) is covered (有物业管理) in `OLD_ESTATE_SERVED_MODES`: a company serves it or the
  community manages it on the owners' behalf (代管). A self-managed old estate usually means nobody manages it.
- a coverage gap (空白点): a compound with no management at all, or an old estate that is not covered (so a
  self-managed old estate is a gap; a newer compound its owners manage themselves is not). `gap_sql` and
  `is_gap` state it once; the old-estate figure is its complement among old estates.

Each figure is a numerator set and a denominator set of one subject (compounds, grids, communities or the property
companies serving compounds in the area), each summed in one unit (households, floor area, a count, persons,
yuan); a `share` figure is numerator / denominator, a `count` figure is the numerator (the denominator shown
beside it). As of a day every subject is taken as its versions say: the pyramid's versions in force, the
management version, the committee's latest term begun, party organisations' periods and grid workers'
assignments in force, cross-appointments made by then. Property fees have no versions in the registry (one
current row per compound), so the fee collection rate is the registry's current figure whatever the date
(`dated` is False).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

from gis.analytics.figures import Figure
from gis.errors import InvalidInput, NotFound
from gis.registry import history
from gis.registry.kinds import MODE_LABELS
from gis.settings import programme_settings

SERVICE_MODES = ("professional", "community_led")
"""Modes of professional property service: a registered property company (market or community-led) serves."""
OLD_ESTATE_SERVED_MODES = ("professional", "community_led", "entrusted")
"""Modes in which an old estate counts as covered: a company serves it, or the community manages it (代管)."""
MODE_NAMES = {mode: label for label, mode in MODE_LABELS.items()}
"""Chinese names of the management modes, as the registry's templates write them."""

LEVELS = ("city", "district", "street", "community")
LEVEL_NAMES = {"city": "全市", "district": "区县", "street": "街道", "community": "社区"}
CITY_CODE = "city"
"""The code of the one area of level city (the whole registry)."""
_AREA = {"city": f"'{CITY_CODE}'", "district": "p.district_code", "street": "p.street_code",
         "community": "p.community_code"}
UNIT_LABELS = {"households": "户", "floor_area_m2": "平方米", "count": "个", "persons": "人", "yuan": "元"}


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def gap_sql(mode: str, is_old: str) -> str:
    """The coverage-gap condition (空白点) over a mode column and an old-estate column."""
    return f"({mode} = 'none' OR ({is_old} AND {mode} NOT IN ({_sql_list(OLD_ESTATE_SERVED_MODES)})))"


def is_gap(mode: str, is_old_estate: bool) -> bool:
    """The coverage-gap rule in Python: no management at all, or an old estate not covered."""
    return mode == "none" or (is_old_estate and mode not in OLD_ESTATE_SERVED_MODES)


def gap_reason(mode: str, is_old_estate: bool) -> str:
    """Why a compound is a gap, in Chinese."""
    if mode == "none":
        return "老旧小区，无物业管理" if is_old_estate else "无物业管理"
    return f"老旧小区，{MODE_NAMES[mode]}（未纳入物业管理）"


def committee_party_half_sql(party: str, members: str) -> str:
    """An owners' committee at least half of whose members are party members (Kunming's and Panshi's rule)."""
    return f"(2 * {party} >= {members})"


def company_party_org_rule(branch_on_day: str, branch_registered: str, has_party_org: str) -> str:
    """A property company has a party organisation on a day: its company branch (企业党支部, registered with the
    company's credit code as its unit) exists that day; for a company with no branch registered at all, its
    undated `has_party_org` flag. The arguments are SQL booleans."""
    return f"({branch_on_day} OR ({has_party_org} AND NOT {branch_registered}))"


def company_party_org_sql(company: str, day: str) -> str:
    """`company_party_org_rule` for the property_company row `company` on `day`, as subqueries."""
    branch = (f"SELECT 1 FROM party_organisation o WHERE o.kind = 'company_branch' "
              f"AND o.unit_code = {company}.credit_code")
    on_day = (f"EXISTS (SELECT 1 FROM {history.PARTY_PERIODS} e JOIN party_organisation o "
              f"ON o.code = e.organisation_code WHERE o.kind = 'company_branch' "
              f"AND o.unit_code = {company}.credit_code "
              f"AND e.valid_from <= {day} AND (e.valid_to IS NULL OR e.valid_to > {day}))")
    return company_party_org_rule(on_day, f"EXISTS ({branch})", f"{company}.has_party_org")


def company_party_work_rule(has_party_org: str, party_work_only: str) -> str:
    """Party work coverage (党的工作覆盖) of a company: a party organisation, or party work without one."""
    return f"({has_party_org} OR {party_work_only})"


# --- the definitions -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Definition:
    """One figure: numerator and denominator sets of one subject, the values summed, and its target's source."""

    key: str
    title: str
    subject: str
    numerator: str
    denominator: str
    unit: str
    description: str
    target_source: str
    kind: str = "share"
    numerator_value: str = "1"
    denominator_value: str | None = None
    modes: tuple[str, ...] | None = None
    dated: bool = True

    @property
    def target(self) -> float | None:
        """The configured target (a share, or a count for count figures), None without one."""
        return getattr(programme_settings(), self.key)

    def describe(self) -> dict:
        """The definition as the API states it."""
        return {"key": self.key, "title": self.title, "subject": self.subject, "kind": self.kind,
                "unit": self.unit, "unit_label": UNIT_LABELS[self.unit], "description": self.description,
                "modes": list(self.modes) if self.modes else None,
                "modes_label": "、".join(MODE_NAMES[m] for m in self.modes) if self.modes else None,
                "numerator_sql": self.numerator, "denominator_sql": self.denominator,
                "target": self.target, "target_source": self.target_source, "dated": self.dated}


_SERVICE = f"mode IN ({_sql_list(SERVICE_MODES)})"
_OLD_SERVED = f"is_old_estate AND mode IN ({_sql_list(OLD_ESTATE_SERVED_MODES)})"
_KUNMING = "昆明市加强党建引领社区物业服务（种子文献 002）"
_TAIAN = "泰安市“红色物业·宜居泰安”（种子文献 000）"

def _d(key: str, title: str, subject: str, numerator: str, denominator: str, unit: str, description: str,
       target_source: str, **options) -> Definition:
    return Definition(key, title, subject, numerator, denominator, unit, description, target_source, **options)


DEFINITIONS: tuple[Definition, ...] = (
    _d("professional_households", "专业化物业服务覆盖率（按户数）", "compound", _SERVICE, "TRUE", "households",
       "由物业服务企业（市场化企业或社区领办企业）服务的小区户数 / 全部小区户数",
       f"无公开目标值；{_TAIAN}报告专业化物业覆盖率 82% 以上",
       numerator_value="households", modes=SERVICE_MODES),
    _d("professional_area", "专业化物业服务覆盖率（按建筑面积）", "compound", _SERVICE, "TRUE", "floor_area_m2",
       "由物业服务企业服务的小区建筑面积 / 全部小区建筑面积",
       "无公开目标值；磐石市报告专业化物业服务面积占 86.89%（种子文献 004）",
       numerator_value="floor_area_m2", modes=SERVICE_MODES),
    _d("old_estate_coverage", "老旧小区物业管理覆盖率", "compound", _OLD_SERVED, "is_old_estate", "count",
       "有物业管理（企业服务或社区代管）的老旧小区 / 全部老旧小区",
       "市政府为民办实事：老旧小区物业管理覆盖率达到 70% 以上（种子文献 003）",
       modes=OLD_ESTATE_SERVED_MODES),
    _d("community_led_old_estates", "社区领办企业覆盖的老旧小区", "compound",
       "is_old_estate AND mode = 'community_led'", "is_old_estate", "count",
       "由社区领办物业企业服务的老旧小区个数（分母为全部老旧小区）",
       f"无目标值；{_TAIAN}：社区领办企业 98 家，覆盖老旧小区 268 个",
       kind="count", modes=("community_led",)),
    _d("community_led_companies", "社区领办物业企业", "company", "is_community_led", "TRUE", "count",
       "在本区域服务小区的社区领办物业企业家数（分母为在本区域服务的全部物业企业）",
       f"无目标值；{_TAIAN}：成立社区领办物业企业 98 家",
       kind="count"),
    _d("gap_compounds", "物业服务空白小区（空白点）", "compound", gap_sql("mode", "is_old_estate"), "TRUE",
       "count", "无物业管理的小区，以及未纳入物业管理（自管）的老旧小区（分母为全部小区）",
       "无目标值；空白点应逐步消除",
       kind="count", modes=("none", "self_managed")),
    _d("committee_formation", "业主委员会组建率", "compound", "has_committee", "TRUE", "count",
       "已组建业主委员会（当日或之前已有一届开始）的小区 / 全部小区",
       f"无公开目标值；{_TAIAN}报告组建率 73.3%"),
    _d("committee_party_share", "业委会委员中党员比例", "compound", "has_committee", "has_committee", "persons",
       "各业委会最近一届的党员委员人数之和 / 委员人数之和",
       f"{_TAIAN}：业委会党员比例达到 60% 以上",
       numerator_value="party_member_count", denominator_value="member_count"),
    _d("committee_party_half", "党员委员过半的业委会占比", "compound",
       "has_committee AND " + committee_party_half_sql("party_member_count", "member_count"), "has_committee",
       "count", "最近一届党员委员不少于半数的业委会 / 已组建的业委会",
       f"{_KUNMING}、磐石市：业委会中党员委员比例不低于 50%"),
    _d("committee_party_chairs", "党员担任主任的业委会占比", "compound",
       "has_committee AND chair_is_party_member", "has_committee", "count",
       "最近一届主任是党员的业委会 / 已组建的业委会",
       f"无量化目标；{_KUNMING}：业委会主任一般由党员担任"),
    _d("community_party_coverage", "社区党组织覆盖率", "community", "has_party_org", "TRUE", "count",
       "当日有社区党委的社区 / 全部社区",
       f"党的组织应建尽建；{_TAIAN}：186 个社区全部成立社区党委"),
    _d("grid_party_coverage", "网格党组织覆盖率", "grid", "has_party_org", "TRUE", "count",
       "当日有网格党支部的网格 / 全部网格",
       f"党的组织应建尽建；{_TAIAN}报告网格党组织覆盖率 99%"),
    _d("company_party_org", "物业企业党的组织覆盖率", "company", "has_party_org", "TRUE", "count",
       "当日有党组织的物业企业 / 在本区域服务小区的物业企业",
       f"{_KUNMING}：2019 年底前不低于 30%，2020 年底前不低于 50%"),
    _d("company_party_work", "物业企业党的工作覆盖率", "company", "has_party_work", "TRUE", "count",
       "有党组织或开展党的工作的物业企业 / 在本区域服务小区的物业企业",
       f"{_KUNMING}：2019 年底前不低于 50%，2020 年底前 100%"),
    _d("cross_companies", "“双向进入、交叉任职”的物业企业占比", "company", "has_cross", "TRUE", "count",
       "与社区“两委”有交叉任职的物业企业 / 在本区域服务小区的物业企业",
       f"{_KUNMING}：2019 年底不少于 40%，2020 年实现 100%"),
    _d("cross_communities", "“双向进入、交叉任职”的社区占比", "community", "has_cross", "TRUE", "count",
       "社区“两委”与物业企业有交叉任职的社区 / 全部社区",
       f"{_KUNMING}：2019 年底不少于 40%，2020 年实现 100%"),
    _d("part_time_grid_workers", "物业企业兼职网格员", "grid", "TRUE", "TRUE", "persons",
       "当日在岗、由物业企业人员兼任的网格员人数（分母为在岗网格员）",
       f"无目标值；{_TAIAN}：816 名物业企业项目负责人担任社区兼职网格员",
       kind="count", numerator_value="company_workers", denominator_value="workers"),
    _d("fee_collection", "物业费收缴率", "compound", "fees_due IS NOT NULL AND fees_collected IS NOT NULL",
       "fees_due IS NOT NULL AND fees_collected IS NOT NULL", "yuan",
       "登记了应收和实收物业费的小区：实收物业费 / 应收物业费（物业费没有历史版本，为当前登记值）",
       f"无目标值；{_TAIAN}报告居民小区物业费收缴率 91.5%",
       numerator_value="fees_collected", denominator_value="fees_due", dated=False),
)
BY_KEY = {definition.key: definition for definition in DEFINITIONS}


def definition(key: str) -> Definition:
    """The figure called `key`; NotFound naming the figures otherwise."""
    if key not in BY_KEY:
        raise NotFound(f"没有指标“{key}”：可用的指标有 {'、'.join(BY_KEY)}")
    return BY_KEY[key]


# --- the subjects as of each day -----------------------------------------------------------------------------

def _in_force(alias: str, day: str = "p.day", start: str = "valid_from", end: str = "valid_to") -> str:
    return f"{alias}.{start} <= {day} AND ({alias}.{end} IS NULL OR {alias}.{end} > {day})"


_PLACES = f"""
    days AS (SELECT DISTINCT unnest(CAST(:days AS date[])) AS day),
    places AS (
        SELECT d.day, cm.code AS community_code, cm.street_code, st.district_code, cm.geom
        FROM days d
        JOIN community cm ON {_in_force('cm', 'd.day')}
        JOIN street st ON st.code = cm.street_code AND {_in_force('st', 'd.day')}),
    party AS (
        SELECT DISTINCT d.day, o.kind, o.unit_code FROM days d
        JOIN {history.PARTY_PERIODS} e ON {_in_force('e', 'd.day')}
        JOIN party_organisation o ON o.code = e.organisation_code),
    terms AS (
        SELECT DISTINCT ON (d.day, t.compound_code) d.day, t.* FROM days d
        JOIN {history.COMMITTEE_TERMS} t ON t.term_start <= d.day
        ORDER BY d.day, t.compound_code, t.term_start DESC)"""
"""The days asked, the communities in force each day with their street and district, the party organisations
existing each day, and each compound's owners' committee: its latest term begun by the day (as `owners_committee`
holds the latest term today; a term past its end still stands for the committee until the next one, and the
committees due for re-election are listed by gis.registry.history.expiring_committees)."""

_BOX = "ST_Intersects(ST_PointOnSurface({geom}), ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326))"


def _compounds_cte(area: str, box: bool) -> str:
    where = ("WHERE " + _BOX.format(geom="c.geom")) if box else ""
    return f"""
    compounds AS (
        SELECT p.day, {area} AS area_code, c.code, c.name, c.community_code, p.street_code, c.geom,
               c.households, c.floor_area_m2, c.is_old_estate, v.management_mode AS mode,
               v.property_company_id AS company_id, t.compound_code IS NOT NULL AS has_committee,
               coalesce(t.member_count, 0) AS member_count, coalesce(t.party_member_count, 0) AS party_member_count,
               coalesce(t.chair_is_party_member, FALSE) AS chair_is_party_member,
               f.fees_due_yuan AS fees_due, f.fees_collected_yuan AS fees_collected
        FROM places p
        JOIN compound c ON c.community_code = p.community_code AND {_in_force('c')}
        JOIN {history.MANAGEMENT_VERSIONS} v ON v.compound_code = c.code AND {_in_force('v')}
        LEFT JOIN terms t ON t.day = p.day AND t.compound_code = c.code
        LEFT JOIN compound_fee f ON f.compound_code = c.code
        {where})"""


_CROSS_PAIR = ("((ca.home_kind = 'property_company' AND ca.seat_kind = 'community_committee') OR "
               "(ca.home_kind = 'community_committee' AND ca.seat_kind = 'property_company'))")
"""双向进入、交叉任职 as Kunming counts it: a property company's manager on a community committee, or a community
committee member in a property company."""


def _subject_sql(subject: str, area: str, box: bool) -> str:
    """The subject's rows (day, area_code, its columns) as of each day, for the level's area expression."""
    if subject == "compound":
        return "SELECT * FROM compounds"
    if subject == "company":
        has_org = company_party_org_rule("b.unit_code IS NOT NULL", "r.unit_code IS NOT NULL", "pc.has_party_org")
        return f"""
            SELECT s.day, s.area_code, pc.id, pc.is_community_led, {has_org} AS has_party_org,
                   {company_party_work_rule(has_org, 'pc.party_work_only')} AS has_party_work,
                   x.credit_code IS NOT NULL AS has_cross
            FROM (SELECT DISTINCT day, area_code, company_id FROM compounds WHERE company_id IS NOT NULL) s
            JOIN property_company pc ON pc.id = s.company_id
            LEFT JOIN party b ON b.day = s.day AND b.kind = 'company_branch' AND b.unit_code = pc.credit_code
            LEFT JOIN (SELECT DISTINCT unit_code FROM party_organisation WHERE kind = 'company_branch') r
                 ON r.unit_code = pc.credit_code
            LEFT JOIN (SELECT DISTINCT d.day, CASE WHEN ca.home_kind = 'property_company' THEN ca.home_ref
                                                   ELSE ca.seat_ref END AS credit_code
                       FROM days d JOIN cross_appointment ca ON ca.since <= d.day WHERE {_CROSS_PAIR}) x
                 ON x.day = s.day AND x.credit_code = pc.credit_code"""
    if subject == "community":
        where = ("WHERE " + _BOX.format(geom="p.geom")) if box else ""
        return f"""
            SELECT p.day, {area} AS area_code, p.community_code,
                   o.unit_code IS NOT NULL AS has_party_org, x.community IS NOT NULL AS has_cross
            FROM places p
            LEFT JOIN party o ON o.day = p.day AND o.kind = 'community_committee' AND o.unit_code = p.community_code
            LEFT JOIN (SELECT DISTINCT d.day, CASE WHEN ca.home_kind = 'community_committee' THEN ca.home_ref
                                                   ELSE ca.seat_ref END AS community
                       FROM days d JOIN cross_appointment ca ON ca.since <= d.day WHERE {_CROSS_PAIR}) x
                 ON x.day = p.day AND x.community = p.community_code
            {where}"""
    where = ("AND " + _BOX.format(geom="g.geom")) if box else ""
    return f"""
            SELECT p.day, {area} AS area_code, g.code, o.unit_code IS NOT NULL AS has_party_org,
                   coalesce(w.workers, 0) AS workers, coalesce(w.company_workers, 0) AS company_workers
            FROM places p
            JOIN grid g ON g.community_code = p.community_code AND {_in_force('g')} {where}
            LEFT JOIN party o ON o.day = p.day AND o.kind = 'grid_branch' AND o.unit_code = g.code
            LEFT JOIN (SELECT d.day, a.grid_code, count(*) AS workers,
                              count(*) FILTER (WHERE gw.is_part_time AND gw.property_company_id IS NOT NULL)
                                  AS company_workers
                       FROM days d JOIN {history.ASSIGNMENTS} a ON {_in_force('a', 'd.day')}
                       JOIN grid_worker gw ON gw.id = a.grid_worker_id GROUP BY 1, 2) w
                 ON w.day = p.day AND w.grid_code = g.code"""


def _sums_sql(subject: str, level: str, box: bool, area_filter: str) -> str:
    sums = []
    for d in DEFINITIONS:
        if d.subject != subject:
            continue
        denominator_value = d.denominator_value or d.numerator_value
        sums.append(f'coalesce(sum({d.numerator_value}) FILTER (WHERE {d.numerator}), 0) AS "{d.key}:n"')
        sums.append(f'coalesce(sum({denominator_value}) FILTER (WHERE {d.denominator}), 0) AS "{d.key}:d"')
    return f"""
        WITH {_PLACES},
        {_compounds_cte(_AREA[level], box)},
        subject AS ({_subject_sql(subject, _AREA[level], box)})
        SELECT day, area_code, {', '.join(sums)} FROM subject WHERE TRUE {area_filter} GROUP BY 1, 2"""


# --- computing ----------------------------------------------------------------------------------------------

def check_day(day: date | None) -> date:
    """The day asked (today in Beijing by default), refused before 2000-01-01 or after today."""
    today = history.today()
    day = day or today
    if day > today:
        raise InvalidInput(f"统计日期 {day.isoformat()} 晚于今天：只能统计已经发生的情况")
    if day < history.EARLIEST:
        raise InvalidInput(f"统计日期 {day.isoformat()} 早于 {history.EARLIEST.isoformat()}")
    return day


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise InvalidInput(f"统计层级只能是 {'、'.join(LEVELS)}（全市、区县、街道、社区），而不是“{level}”")


def area_names(conn: Connection, level: str) -> dict[str, dict]:
    """{code: {name, parent_code}} of every area of the level ever recorded (the newest version's name)."""
    _check_level(level)
    if level == "city":
        return {CITY_CODE: {"name": "全市", "parent_code": None}}
    parent = {"district": "NULL", "street": "district_code", "community": "street_code"}[level]
    rows = conn.execute(text(f"""
        SELECT DISTINCT ON (code) code, name, {parent} AS parent_code FROM {level}
        ORDER BY code, valid_to IS NULL DESC, valid_from DESC""")).mappings()
    return {row["code"]: {"name": row["name"], "parent_code": row["parent_code"]} for row in rows}


def _area_filter(code: str | None, within: str | None, params: dict) -> str:
    if code is not None:
        params["code"] = code
        return " AND area_code = :code"
    if within:
        params["within"] = within + "%"
        return " AND area_code LIKE :within"
    return ""


def compute(conn: Connection, level: str, days: list[date], code: str | None = None, within: str | None = None,
            bbox: tuple[float, float, float, float] | None = None) -> dict[tuple[date, str], dict[str, tuple]]:
    """{(day, area code): {figure key: (numerator, denominator)}} for the areas of `level` (one when `code` is
    given, those whose code starts with `within` otherwise), each day; with `bbox`, only the compounds, grids and
    communities whose point on surface lies in the box (and the companies serving those compounds)."""
    _check_level(level)
    params: dict = {"days": sorted(set(days))}
    if bbox is not None:
        params.update(zip(("minx", "miny", "maxx", "maxy"), bbox))
    area_filter = _area_filter(code, within, params)
    out: dict[tuple[date, str], dict[str, tuple]] = {}
    for subject in ("compound", "company", "community", "grid"):
        rows = conn.execute(text(_sums_sql(subject, level, bbox is not None, area_filter)), params).mappings()
        for row in rows:
            figures = out.setdefault((row["day"], row["area_code"]), {})
            for d in DEFINITIONS:
                if d.subject == subject:
                    figures[d.key] = (float(row[f"{d.key}:n"]), float(row[f"{d.key}:d"]))
    return out


def _number(value: float, unit: str) -> float | int:
    return round(value, 2) if unit in ("floor_area_m2", "yuan") else int(round(value))


def figure_value(d: Definition, numerator: float, denominator: float) -> dict:
    """A figure's value from its sums, with its target, the gap to the target and whether it is met."""
    value: float | None
    if d.kind == "count":
        value = _number(numerator, d.unit)
    else:
        value = round(numerator / denominator, 6) if denominator else None
    target = d.target
    gap = None if target is None or value is None else round(target - value, 6)
    return {"value": value, "numerator": _number(numerator, d.unit), "denominator": _number(denominator, d.unit),
            "share": round(numerator / denominator, 6) if denominator else None,
            "target": target, "gap": gap, "met": None if gap is None else gap <= 0}


def _resolve_area(conn: Connection, level: str, code: str | None) -> tuple[str, dict]:
    names = area_names(conn, level)
    if level == "city":
        return CITY_CODE, names[CITY_CODE]
    if not code:
        raise InvalidInput(f"请给出{LEVEL_NAMES[level]}编码（code）")
    if code not in names:
        raise NotFound(f"没有编码为 {code} 的{LEVEL_NAMES[level]}")
    return code, names[code]


FIGURE_COLUMNS = ["key", "title", "value", "numerator", "denominator", "share", "unit", "unit_label", "kind",
                  "target", "gap", "met", "modes_label", "description", "target_source", "dated"]
FIGURE_LABELS = {"key": "指标编码", "title": "指标", "value": "数值", "numerator": "分子", "denominator": "分母",
                 "share": "比例", "unit": "单位编码", "unit_label": "单位", "kind": "类型", "target": "目标值",
                 "gap": "距目标", "met": "是否达标", "modes_label": "计入的管理方式", "description": "口径",
                 "target_source": "目标来源", "dated": "按日期统计"}


def _modes(conn: Connection, level: str, code: str, day: date, bbox) -> list[dict]:
    params: dict = {"days": [day], "code": code}
    if bbox is not None:
        params.update(zip(("minx", "miny", "maxx", "maxy"), bbox))
    rows = conn.execute(text(f"""
        WITH {_PLACES}, {_compounds_cte(_AREA[level], bbox is not None)}
        SELECT mode, count(*) AS compounds, sum(households) AS households, sum(floor_area_m2) AS floor_area_m2,
               count(*) FILTER (WHERE is_old_estate) AS old_estates
        FROM compounds WHERE area_code = :code GROUP BY mode"""), params).mappings()
    found = {row["mode"]: row for row in rows}
    return [{"mode": mode, "name": MODE_NAMES[mode], "compounds": int(found[mode]["compounds"]) if mode in found else 0,
             "households": int(found[mode]["households"] or 0) if mode in found else 0,
             "floor_area_m2": round(float(found[mode]["floor_area_m2"] or 0), 2) if mode in found else 0.0,
             "old_estates": int(found[mode]["old_estates"]) if mode in found else 0}
            for mode in MODE_NAMES]


def programme(conn: Connection, level: str = "city", code: str | None = None, as_of: date | None = None,
              bbox: tuple[float, float, float, float] | None = None) -> Figure:
    """Every figure of one area as of a day, with its target, the gap and whether it is met; `meta` names the
    area and holds the compounds per management mode (with `bbox`: the view's compounds, level city)."""
    day = check_day(as_of)
    if bbox is not None and level != "city":
        raise InvalidInput("按视野（bbox）统计时层级应为 city")
    code, area = _resolve_area(conn, level, code)
    sums = compute(conn, level, [day], code=code, bbox=bbox).get((day, code), {})
    rows = []
    for d in DEFINITIONS:
        numerator, denominator = sums.get(d.key, (0.0, 0.0))
        rows.append({**d.describe(), **figure_value(d, numerator, denominator)})
    meta = {"level": level, "level_name": LEVEL_NAMES[level], "code": code, "name": area["name"],
            "as_of": day.isoformat(), "bbox": list(bbox) if bbox else None,
            "modes": _modes(conn, level, code, day, bbox),
            "rules": {"service_modes": list(SERVICE_MODES), "old_estate_served_modes": list(OLD_ESTATE_SERVED_MODES),
                      "gap": "无物业管理的小区，以及管理方式不是专业物业、社区领办或代管的老旧小区"}}
    return Figure(f"programme_{level}_{code}_{day.isoformat()}", FIGURE_COLUMNS, rows, meta, labels=FIGURE_LABELS)


AREA_COLUMNS = ["code", "name", "parent_code", "value", "numerator", "denominator", "share", "target", "gap", "met"]
AREA_LABELS = {"code": "区域编码", "name": "区域", "parent_code": "上级编码", "value": "数值", "numerator": "分子",
               "denominator": "分母", "share": "比例", "target": "目标值", "gap": "距目标", "met": "是否达标"}


def per_area(conn: Connection, key: str, level: str = "community", within: str | None = None,
             as_of: date | None = None) -> Figure:
    """One figure for every area of the level in force that day (those whose code starts with `within`)."""
    d = definition(key)
    day = check_day(as_of)
    names = area_names(conn, level)
    sums = compute(conn, level, [day], within=within)
    rows = []
    for (_, code), figures in sorted(sums.items()):
        area = names.get(code, {"name": code, "parent_code": None})
        rows.append({"code": code, "name": area["name"], "parent_code": area["parent_code"],
                     **figure_value(d, *figures.get(key, (0.0, 0.0)))})
    meta = {**d.describe(), "level": level, "within": within, "as_of": day.isoformat(), "areas": len(rows)}
    return Figure(f"programme_{key}_{level}_{day.isoformat()}", AREA_COLUMNS, rows, meta, labels=AREA_LABELS)


def month_ends(until: date, months: int) -> list[tuple[str, date]]:
    """(YYYY-MM, the day figures are taken) of the `months` months up to `until`'s: each month's last day, and
    `until` itself for its own month."""
    out = []
    year, month = until.year, until.month
    for _ in range(months):
        last = date(year, month, calendar.monthrange(year, month)[1])
        out.append((f"{year:04d}-{month:02d}", min(last, until)))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return [item for item in reversed(out) if item[1] >= history.EARLIEST]


def trend(conn: Connection, level: str = "city", code: str | None = None, until: date | None = None,
          months: int = 12) -> Figure:
    """Every figure of one area as of each month's end, oldest month first (the current month: as of `until`)."""
    if not 1 <= months <= 120:
        raise InvalidInput("月数应在 1 到 120 之间")
    until = check_day(until)
    code, area = _resolve_area(conn, level, code)
    ends = month_ends(until, months)
    sums = compute(conn, level, [day for _, day in ends], code=code)
    rows = []
    for month, day in ends:
        figures = sums.get((day, code), {})
        row = {"month": month, "as_of": day.isoformat()}
        for d in DEFINITIONS:
            row[d.key] = figure_value(d, *figures.get(d.key, (0.0, 0.0)))["value"]
        rows.append(row)
    meta = {"level": level, "code": code, "name": area["name"], "until": until.isoformat(), "months": len(rows),
            "targets": {d.key: d.target for d in DEFINITIONS}}
    labels = {"month": "月份", "as_of": "统计日期", **{d.key: d.title for d in DEFINITIONS}}
    return Figure(f"programme_trend_{level}_{code}", ["month", "as_of", *BY_KEY], rows, meta, labels=labels)


GAP_COLUMNS = ["code", "name", "community_code", "street_code", "management_mode", "mode_name", "is_old_estate",
               "households", "floor_area_m2", "reason"]
GAP_LABELS = {"code": "小区编码", "name": "小区", "community_code": "社区编码", "street_code": "街道编码",
              "management_mode": "管理方式编码", "mode_name": "管理方式", "is_old_estate": "老旧小区",
              "households": "户数", "floor_area_m2": "建筑面积（平方米）", "reason": "空白原因"}


def gaps(conn: Connection, level: str = "city", code: str | None = None, as_of: date | None = None,
         bbox: tuple[float, float, float, float] | None = None) -> Figure:
    """The gap compounds (空白点) of one area as of a day, with their shapes: a layer."""
    day = check_day(as_of)
    code, area = _resolve_area(conn, level, code)
    params: dict = {"days": [day], "code": code}
    if bbox is not None:
        params.update(zip(("minx", "miny", "maxx", "maxy"), bbox))
    rows = [dict(row) for row in conn.execute(text(f"""
        WITH {_PLACES}, {_compounds_cte(_AREA[level], bbox is not None)}
        SELECT code, name, community_code, street_code, mode AS management_mode, is_old_estate, households,
               round(floor_area_m2::numeric, 2)::float AS floor_area_m2, ST_AsGeoJSON(geom, 6) AS geometry
        FROM compounds WHERE area_code = :code AND {gap_sql('mode', 'is_old_estate')} ORDER BY code"""),
        params).mappings()]
    for row in rows:
        row["mode_name"] = MODE_NAMES[row["management_mode"]]
        row["reason"] = gap_reason(row["management_mode"], row["is_old_estate"])
    meta = {"level": level, "code": code, "name": area["name"], "as_of": day.isoformat(), "gaps": len(rows),
            "rule": "无物业管理的小区，以及管理方式不是专业物业、社区领办或代管的老旧小区"}
    return Figure(f"gaps_{level}_{code}_{day.isoformat()}", GAP_COLUMNS, rows, meta,
                  geometries=[row.pop("geometry") for row in rows], labels=GAP_LABELS)
