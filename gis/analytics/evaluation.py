"""The red/black list (红黑榜): a half-yearly evaluation of property companies and their credit files.

Score = weighted mean of three parts, 0–100 each, weights 5 : 3 : 2 by default (GRIDGOV_EVAL_...):
- residents: the mean of the residents' inputs available — complaint-rate score (property-service complaints per
  1,000 households of the company's compounds, scaled so the lowest rate scores 100 and the highest 0), and where
  tickets exist, satisfaction (share of rated tickets rated 4 or 5) and resolution (share of tickets closed), each once the period has any rating or closed ticket;
- regulator: the mean score of the period's inspections;
- street and community: the mean of the period's street and community ratings.
A part without inputs takes the mean of the other companies (neutral) and this is recorded. The top and bottom
10 % (at least one each) are red and black; black in two half-years in a row flags the company for exit.
The year-end overall evaluation averages each company's two half-years part by part and lists the year the same
way.
"""

from __future__ import annotations

import json
import math

from sqlalchemy import Connection, text

from gis.analytics.figures import Figure
from gis.analytics.periods import Period, half_year, parse_period
from gis.errors import InvalidInput, NotFound
from gis.settings import EvaluationSettings, evaluation_settings


def _check_settings(settings: EvaluationSettings) -> tuple[float, float, float]:
    weights = (settings.residents_weight, settings.regulator_weight, settings.street_weight)
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise InvalidInput("evaluation weights must be non-negative and not all zero")
    if not (0 <= settings.red_share <= 0.5 and 0 <= settings.black_share <= 0.5):
        raise InvalidInput("red and black shares must be between 0 and 0.5")
    return weights


def ticket_inputs(conn: Connection, period: Period) -> dict[str, bool]:
    """Which residents' inputs the ticket workflow can give for the period: satisfaction once residents have rated
    some tickets, resolution once some tickets have been closed (tickets that were only created say nothing)."""
    row = conn.execute(text("""
        SELECT count(*) FILTER (WHERE rating IS NOT NULL) > 0, count(*) FILTER (WHERE state = 'closed') > 0
        FROM ticket WHERE reported_at >= :start_at AND reported_at < :end_at
    """), {"start_at": period.start_at, "end_at": period.end_at}).one()
    return {"satisfaction": bool(row[0]), "resolution_rate": bool(row[1])}


def _inputs_sql(with_tickets: bool) -> str:
    ticket_part = """
        , tickets AS (
            SELECT cp.property_company_id AS company_id,
                   count(*) FILTER (WHERE t.rating IS NOT NULL) AS rated,
                   count(*) FILTER (WHERE t.rating >= :satisfied) AS satisfied,
                   count(*) FILTER (WHERE t.state NOT IN ('rejected', 'merged')) AS valid_tickets,
                   count(*) FILTER (WHERE t.state = 'closed') AS closed
            FROM ticket t JOIN complaint c ON c.id = t.complaint_id
            JOIN category k ON k.code = c.category_code AND k.responsible_kind = 'property_company'
            JOIN compound cp ON cp.code = c.compound_code AND cp.valid_to IS NULL
            WHERE c.reported_at >= :start_at AND c.reported_at < :end_at AND cp.property_company_id IS NOT NULL
            GROUP BY 1
        )""" if with_tickets else ""
    ticket_columns = ("tickets.rated, tickets.satisfied, tickets.valid_tickets, tickets.closed" if with_tickets
                      else "NULL::bigint AS rated, NULL::bigint AS satisfied, NULL::bigint AS valid_tickets, "
                           "NULL::bigint AS closed")
    ticket_join = "LEFT JOIN tickets ON tickets.company_id = pc.id" if with_tickets else ""
    return f"""
        WITH managed AS (
            SELECT property_company_id AS company_id, count(*) AS compounds, sum(households) AS households
            FROM compound WHERE valid_to IS NULL AND property_company_id IS NOT NULL GROUP BY 1
        ),
        complaints AS (
            SELECT cp.property_company_id AS company_id, count(*) AS complaints
            FROM complaint c
            JOIN category k ON k.code = c.category_code AND k.responsible_kind = 'property_company'
            JOIN compound cp ON cp.code = c.compound_code AND cp.valid_to IS NULL
            WHERE c.reported_at >= :start_at AND c.reported_at < :end_at AND cp.property_company_id IS NOT NULL
            GROUP BY 1
        ),
        inspections AS (
            SELECT company_id, count(*) AS inspections, avg(score) AS regulator_score
            FROM regulator_inspection WHERE inspected_on >= :start AND inspected_on < :end GROUP BY 1
        ),
        ratings AS (
            SELECT company_id, count(*) AS ratings, avg(score) AS street_score
            FROM company_rating WHERE period = :period GROUP BY 1
        ){ticket_part}
        SELECT pc.id AS company_id, pc.name, pc.credit_code, managed.compounds, managed.households,
               coalesce(complaints.complaints, 0) AS complaints,
               coalesce(inspections.inspections, 0) AS inspections, inspections.regulator_score,
               coalesce(ratings.ratings, 0) AS ratings, ratings.street_score, {ticket_columns}
        FROM property_company pc
        JOIN managed ON managed.company_id = pc.id
        LEFT JOIN complaints ON complaints.company_id = pc.id
        LEFT JOIN inspections ON inspections.company_id = pc.id
        LEFT JOIN ratings ON ratings.company_id = pc.id
        {ticket_join}
        ORDER BY pc.id
    """


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


EVALUATION_COLUMNS = [
    "rank", "company_id", "name", "credit_code", "standing", "grade", "flagged_for_exit", "total_score",
    "residents_score", "regulator_score", "street_score", "compounds", "households", "complaints",
    "complaint_rate_per_1000", "complaint_rate_score", "satisfaction", "resolution_rate", "inspections", "ratings",
    "previous_standing", "inputs",
]


def compute_evaluation(conn: Connection, period_label: str,
                       settings: EvaluationSettings | None = None) -> Figure:
    """The evaluation of every company managing compounds, for a half-year, computed from the inputs (not
    stored; see `store_evaluation`)."""
    settings = settings or evaluation_settings()
    weights = _check_settings(settings)
    period = half_year(period_label)
    from_tickets = ticket_inputs(conn, period)
    with_tickets = any(from_tickets.values())
    params = {"start_at": period.start_at, "end_at": period.end_at, "start": period.start, "end": period.end,
              "period": period.label, "satisfied": settings.satisfied_rating}
    rows = [dict(r) for r in conn.execute(text(_inputs_sql(with_tickets)), params).mappings()]
    if not rows:
        raise NotFound("no property company manages a compound: nothing to evaluate")

    for row in rows:
        households = row["households"] or 0
        row["complaint_rate_per_1000"] = row["complaints"] * 1000.0 / households if households else None
        row["satisfaction"] = (100.0 * row["satisfied"] / row["rated"]
                               if from_tickets["satisfaction"] and row["rated"] else None)
        row["resolution_rate"] = (100.0 * row["closed"] / row["valid_tickets"]
                                  if from_tickets["resolution_rate"] and row["valid_tickets"] else None)
    rates = [r["complaint_rate_per_1000"] for r in rows if r["complaint_rate_per_1000"] is not None]
    low, high = (min(rates), max(rates)) if rates else (0.0, 0.0)
    for row in rows:
        rate = row["complaint_rate_per_1000"]
        row["complaint_rate_score"] = None if rate is None else (
            100.0 if high == low else 100.0 * (high - rate) / (high - low))
        used = {name: row[name] for name in ("complaint_rate_score", "satisfaction", "resolution_rate")
                if row[name] is not None}
        row["residents_score"] = _mean(list(used.values()))
        row["inputs"] = {"residents": sorted(used), "tickets": with_tickets, "neutral": [],
                         "complaint_rate_score": row["complaint_rate_score"]}

    # Parts without inputs take the mean of the companies that have them, so a gap neither helps nor hurts.
    for part in ("residents_score", "regulator_score", "street_score"):
        neutral = _mean([r[part] for r in rows])
        for row in rows:
            if row[part] is None:
                row[part] = neutral if neutral is not None else 0.0
                row["inputs"]["neutral"].append(part)
    total_weight = sum(weights)
    for row in rows:
        row["total_score"] = (weights[0] * row["residents_score"] + weights[1] * row["regulator_score"]
                              + weights[2] * row["street_score"]) / total_weight

    red_count, black_count = _rank(rows, settings, _stored_standings(conn, period.previous().label))
    for row in rows:
        row["flagged_for_exit"] = row["standing"] == "black" and row["previous_standing"] == "black"
    n = len(rows)
    meta = {
        "period": period.label, "companies": n, "red": red_count, "black": black_count,
        "weights": {"residents": weights[0], "regulator": weights[1], "street_and_community": weights[2]},
        "residents_inputs": ["complaint_rate_score", *(name for name, used in from_tickets.items() if used)],
        "tickets_used": with_tickets, "previous_period": period.previous().label,
        "excellent_score": settings.excellent_score,
    }
    for row in rows:
        row["inputs"] = json.dumps(row["inputs"], ensure_ascii=False)
    return Figure(f"evaluation_{period.label}", EVALUATION_COLUMNS, rows, meta)


def _rank(rows: list[dict], settings: EvaluationSettings, previous: dict[int, str]) -> tuple[int, int]:
    """Order by total (then residents' score, then company), name the top and bottom shares red and black, grade
    and round; returns how many are red and black."""
    rows.sort(key=lambda r: (-round(r["total_score"], 9), -round(r["residents_score"], 9), r["company_id"]))
    n = len(rows)
    red_count = max(1, math.floor(n * settings.red_share)) if n >= 2 and settings.red_share > 0 else 0
    black_count = max(1, math.floor(n * settings.black_share)) if n >= 2 and settings.black_share > 0 else 0
    black_count = min(black_count, n - red_count)
    for index, row in enumerate(rows):
        row["rank"] = index + 1
        row["standing"] = "red" if index < red_count else "black" if index >= n - black_count else "none"
        row["grade"] = ("black" if row["standing"] == "black" else
                        "excellent" if row["standing"] == "red" or row["total_score"] >= settings.excellent_score
                        else "qualified")
        row["previous_standing"] = previous.get(row["company_id"])
        for key in ("total_score", "residents_score", "regulator_score", "street_score", "complaint_rate_per_1000",
                    "complaint_rate_score", "satisfaction", "resolution_rate"):
            if row.get(key) is not None:
                row[key] = round(float(row[key]), 4)
    return red_count, black_count


def compute_year_end(conn: Connection, year_label: str, settings: EvaluationSettings | None = None) -> Figure:
    """The year-end overall evaluation (年终综合评定): each company's two stored half-year evaluations averaged
    part by part (one half when it was evaluated in one only), ranked and listed red and black like a half-year.
    A company black in both halves of the year is flagged for exit."""
    settings = settings or evaluation_settings()
    period = evaluation_period(year_label)
    halves = [f"{period.start.year}H1", f"{period.start.year}H2"]
    found = [dict(r) for r in conn.execute(text("""
        SELECT e.company_id, pc.name, pc.credit_code, e.period, e.standing, e.total_score, e.residents_score,
               e.regulator_score, e.street_score, d.compounds, d.households, d.complaints, d.satisfaction,
               d.resolution_rate, d.inspections, d.ratings, (d.inputs->>'complaint_rate_score')::float AS rate_score
        FROM company_evaluation e JOIN evaluation_detail d ON d.evaluation_id = e.id
        JOIN property_company pc ON pc.id = e.company_id
        WHERE e.period = ANY(:halves) ORDER BY e.company_id, e.period
    """), {"halves": halves}).mappings()]
    if not found:
        raise NotFound(f"no half-year of {period.label} has been evaluated: run {halves[0]} and {halves[1]} first")
    companies: dict[int, list[dict]] = {}
    for row in found:
        companies.setdefault(row["company_id"], []).append(row)
    rows = []
    for company_id, parts in companies.items():
        latest = parts[-1]
        households = latest["households"] or 0
        complaints = sum(part["complaints"] or 0 for part in parts)
        rows.append({
            "company_id": company_id, "name": latest["name"], "credit_code": latest["credit_code"],
            **{key: _mean([part[key] for part in parts]) for key in (
                "total_score", "residents_score", "regulator_score", "street_score", "satisfaction",
                "resolution_rate")},
            "complaint_rate_score": _mean([part["rate_score"] for part in parts]),
            "compounds": latest["compounds"], "households": households, "complaints": complaints,
            "complaint_rate_per_1000": complaints * 1000.0 / households if households else None,
            "inspections": sum(part["inspections"] or 0 for part in parts),
            "ratings": sum(part["ratings"] or 0 for part in parts),
            "inputs": json.dumps({"halves": [part["period"] for part in parts],
                                  "half_standings": [part["standing"] for part in parts],
                                  "complaint_rate_score": _mean([part["rate_score"] for part in parts])},
                                 ensure_ascii=False),
            "_black_halves": sum(part["standing"] == "black" for part in parts),
        })
    red_count, black_count = _rank(rows, settings, _stored_standings(conn, period.previous().label))
    for row in rows:
        row["flagged_for_exit"] = row.pop("_black_halves") == 2
    meta = {"period": period.label, "kind": "year-end", "companies": len(rows), "red": red_count,
            "black": black_count, "halves": sorted({row["period"] for row in found}),
            "previous_period": period.previous().label, "excellent_score": settings.excellent_score}
    return Figure(f"evaluation_{period.label}", EVALUATION_COLUMNS, rows, meta)


def evaluation_period(label: str) -> Period:
    """A half-year (YYYYH1, YYYYH2) or a year (YYYY, the year-end overall evaluation)."""
    period = parse_period(label)
    if period.kind not in ("half", "year"):
        raise InvalidInput(f"evaluations are half-yearly (YYYYH1, YYYYH2) or year-end (YYYY), not {label!r}")
    return period


def _stored_standings(conn: Connection, period_label: str) -> dict[int, str]:
    return dict(conn.execute(text("SELECT company_id, standing FROM company_evaluation WHERE period = :period"),
                             {"period": period_label}).all())


def store_evaluation(conn: Connection, figure: Figure) -> int:
    """Write (or replace) the period's evaluations and their detail; the caller commits."""
    period = figure.meta["period"]
    conn.execute(text("DELETE FROM company_evaluation WHERE period = :period"), {"period": period})
    for row in figure.rows:
        evaluation_id = conn.execute(text("""
            INSERT INTO company_evaluation (company_id, period, residents_score, regulator_score, street_score,
                                            total_score, standing)
            VALUES (:company_id, :period, :residents_score, :regulator_score, :street_score, :total_score, :standing)
            RETURNING id
        """), {**row, "period": period}).scalar_one()
        conn.execute(text("""
            INSERT INTO evaluation_detail (evaluation_id, rank, companies_ranked, compounds, households, complaints,
                complaint_rate_per_1000, satisfaction, resolution_rate, inspections, ratings, grade,
                flagged_for_exit, inputs)
            VALUES (:evaluation_id, :rank, :companies_ranked, :compounds, :households, :complaints,
                :complaint_rate_per_1000, :satisfaction, :resolution_rate, :inspections, :ratings, :grade,
                :flagged_for_exit, CAST(:inputs AS jsonb))
        """), {**row, "evaluation_id": evaluation_id, "companies_ranked": len(figure.rows)})
    return len(figure.rows)


def evaluate(conn: Connection, period_label: str, settings: EvaluationSettings | None = None) -> Figure:
    """Compute and store the evaluation of a half-year, or the year-end one of a year (replacing an earlier run
    of the same period)."""
    if evaluation_period(period_label).kind == "year":
        figure = compute_year_end(conn, period_label, settings)
    else:
        figure = compute_evaluation(conn, period_label, settings)
    store_evaluation(conn, figure)
    return figure


def stored_evaluation(conn: Connection, period_label: str) -> Figure | None:
    """The evaluation as stored for a half-year or a year, or None when it has not been run."""
    period = evaluation_period(period_label)
    rows = [dict(r) for r in conn.execute(text("""
        SELECT d.rank, e.company_id, pc.name, pc.credit_code, e.standing, d.grade, d.flagged_for_exit,
               e.total_score, e.residents_score, e.regulator_score, e.street_score, d.compounds, d.households,
               d.complaints, d.complaint_rate_per_1000, (d.inputs->>'complaint_rate_score')::float AS complaint_rate_score,
               d.satisfaction,
               d.resolution_rate, d.inspections, d.ratings, prev.standing AS previous_standing,
               d.inputs::text AS inputs
        FROM company_evaluation e JOIN evaluation_detail d ON d.evaluation_id = e.id
        JOIN property_company pc ON pc.id = e.company_id
        LEFT JOIN company_evaluation prev ON prev.company_id = e.company_id AND prev.period = :previous
        WHERE e.period = :period ORDER BY d.rank
    """), {"period": period.label, "previous": period.previous().label}).mappings()]
    if not rows:
        return None
    meta = {"period": period.label, "companies": len(rows), "stored": True,
            "red": sum(r["standing"] == "red" for r in rows), "black": sum(r["standing"] == "black" for r in rows)}
    return Figure(f"evaluation_{period.label}", EVALUATION_COLUMNS, rows, meta)


def evaluation(conn: Connection, period_label: str) -> Figure:
    """The stored evaluation of a half-year or year, else a preview computed from the inputs (marked
    `stored: false`)."""
    figure = stored_evaluation(conn, period_label)
    if figure is None:
        kind = evaluation_period(period_label).kind
        figure = (compute_year_end if kind == "year" else compute_evaluation)(conn, period_label)
        figure.meta["stored"] = False
    return figure


def credit_file(conn: Connection, company_id: int) -> dict[str, Figure]:
    """A company's credit file (信用档案): its evaluations over time, inspections and ratings."""
    company = conn.execute(text("""
        SELECT pc.id, pc.name, pc.credit_code, pc.is_community_led, pc.has_party_org, pc.party_work_only,
               pc.founded_year,
               (SELECT count(*) FROM compound cp WHERE cp.property_company_id = pc.id AND cp.valid_to IS NULL)
                   AS compounds
        FROM property_company pc WHERE pc.id = :id
    """), {"id": company_id}).mappings().one_or_none()
    if company is None:
        raise NotFound(f"no property company {company_id}")
    history = [dict(r) for r in conn.execute(text("""
        SELECT e.period, e.total_score, e.residents_score, e.regulator_score, e.street_score, e.standing,
               d.rank, d.companies_ranked, d.grade, d.flagged_for_exit, d.complaints, d.complaint_rate_per_1000,
               d.satisfaction, d.resolution_rate
        FROM company_evaluation e LEFT JOIN evaluation_detail d ON d.evaluation_id = e.id
        WHERE e.company_id = :id ORDER BY left(e.period, 4), length(e.period) = 4, e.period
    """), {"id": company_id}).mappings()]  # a year's year-end evaluation after its two half-years
    inspections = [dict(r) for r in conn.execute(text(
        "SELECT inspected_on, compound_code, score, findings, note FROM regulator_inspection "
        "WHERE company_id = :id ORDER BY inspected_on"), {"id": company_id}).mappings()]
    ratings = [dict(r) for r in conn.execute(text(
        "SELECT period, rater_level, rater_code, score FROM company_rating WHERE company_id = :id "
        "ORDER BY period, rater_level, rater_code"), {"id": company_id}).mappings()]
    info = dict(company)
    halves = [h for h in history if len(h["period"]) > 4]
    info["times_red"] = sum(h["standing"] == "red" for h in halves)
    info["times_black"] = sum(h["standing"] == "black" for h in halves)
    info["year_end_standings"] = {h["period"]: h["standing"] for h in history if len(h["period"]) == 4}
    info["flagged_for_exit"] = bool(history and history[-1]["flagged_for_exit"])
    return {
        "evaluations": Figure("credit_file_evaluations", list(history[0]) if history else
                              ["period", "total_score", "standing"], history, info),
        "inspections": Figure("credit_file_inspections", ["inspected_on", "compound_code", "score", "findings",
                                                          "note"], inspections, {"company_id": company_id}),
        "ratings": Figure("credit_file_ratings", ["period", "rater_level", "rater_code", "score"], ratings,
                          {"company_id": company_id}),
    }
