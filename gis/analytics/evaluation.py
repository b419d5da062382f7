"""The red/black list (红黑榜): a half-yearly evaluation of property companies and their credit files.

Score = weighted mean of the parts, 0–100 each; weights residents : regulator : street = 5 : 3 : 2 by default
(Panshi), or Tai'an's variant where the community party organisation holds 60% (`EVALUATION_SCHEMES`,
GRIDGOV_EVAL_*_WEIGHT):
- residents: the mean of the residents' inputs available — complaint-rate score (property-service complaints per
  1,000 households of the company's compounds, scaled so the lowest rate scores 100 and the highest 0), the
  residents' satisfaction surveys of its compounds (mean score weighted by sample size), and where tickets exist,
  satisfaction and resolution by the desk's own rules (gis/tickets/rates.py, one rule for both): satisfaction is
  the share of residents satisfied among those who answered, each ticket's latest answer once (its rating of 4 or
  5, or its callback's 回访 "satisfied"); resolution is the share of the counted tickets (neither rejected nor
  merged) that are resolved — closed, with no repeat complaint of the same category at the same compound or
  building within GRIDGOV_RATES_REPEAT_WINDOW_DAYS after the closing (重复投诉) and no callback saying not solved;
- regulator: the mean score of the period's inspections (行业主管部门);
- street and community: the mean of the period's street and community ratings; with a community weight above 0
  the community's ratings (its party organisation's) form a part of their own and the street's the street part.

Too little data: a company is ranked only on enough evidence. Each input has a documented minimum sample
(`EvaluationSettings.min_*`): ticket shares need `min_ticket_sample` tickets and surveys `min_survey_sample`
respondents to enter the residents' part (below it the input is left out, not scored 0 or 100), and a company
with fewer than `min_inspections` inspections or `min_ratings` ratings (or no complaint-rate score) is listed as
insufficient data (数据不足): shown with what it has, but not ranked, not red and not black. A minimum sample was
chosen over shrinkage toward the mean because the list has consequences — rectification, exit, subsidy — and a
company must be able to see which evidence put it there; a shrunk score depends on every other company's
figures, cannot be explained to the company and still ranks a company on one rating. The desk's ticket rates
follow the same rule (units below a minimum sample listed, not ranked).

The top and bottom 10 % of the ranked companies (at least one each) are red and black. A black-listed company gets
a rectification task (gis/analytics/rectification.py); black in two half-years in a row without a passed
rectification flags the company for exit (清退). The year-end overall evaluation averages each company's two
half-years part by part (halves with sufficient data only) and lists the year the same way.
"""

from __future__ import annotations

import json
import math

from sqlalchemy import Connection, text

from gis.analytics.credit import credit_scores
from gis.analytics.figures import Figure
from gis.analytics.periods import Period, half_year, parse_period
from gis.analytics.rectification import open_tasks
from gis.errors import InvalidInput, NotFound
from gis.settings import EVALUATION_SCHEMES, EvaluationSettings, evaluation_settings
from gis.tickets.callbacks import answered_sql, refuted_sql, satisfied_sql
from gis.tickets.rates import counted_sql, counts_sql, repeat_params, resolved_sql
from gis.tickets.repeats import WINDOW_PARAM

PARTS = ("residents_score", "regulator_score", "street_score", "community_score")
"""The parts of the total, in the order of their weights."""


def scheme_settings(name: str) -> EvaluationSettings:
    """The settings of a named weighting scheme (`panshi`, `taian`), other settings from the environment."""
    if name not in EVALUATION_SCHEMES:
        raise InvalidInput(f"没有名为 {name!r} 的评价权重方案（可选：{'、'.join(EVALUATION_SCHEMES)}）")
    return evaluation_settings().model_copy(update=EVALUATION_SCHEMES[name])


def _check_settings(settings: EvaluationSettings) -> tuple[float, float, float, float]:
    weights = (settings.residents_weight, settings.regulator_weight, settings.street_weight,
               settings.community_weight)
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise InvalidInput("评价权重不能为负数，也不能全部为零")
    if not (0 <= settings.red_share <= 0.5 and 0 <= settings.black_share <= 0.5):
        raise InvalidInput("红榜、黑榜比例须在 0 到 0.5 之间")
    if min(settings.min_inspections, settings.min_ratings, settings.min_ticket_sample,
           settings.min_survey_sample) < 0:
        raise InvalidInput("最小样本量不能为负数")
    return weights


def ticket_inputs(conn: Connection, period: Period) -> dict[str, bool]:
    """Which residents' inputs the ticket workflow can give for the period: satisfaction once residents have
    answered on some tickets (a rating or a callback), resolution once some tickets have been closed (tickets that
    were only created say nothing)."""
    row = conn.execute(text(f"""
        SELECT count(*) FILTER (WHERE {answered_sql('t')}) > 0, count(*) FILTER (WHERE t.state = 'closed') > 0
        FROM ticket t WHERE t.reported_at >= :start_at AND t.reported_at < :end_at AND {counts_sql('t')}
    """), {"start_at": period.start_at, "end_at": period.end_at}).one()
    return {"satisfaction": bool(row[0]), "resolution_rate": bool(row[1])}


def _inputs_sql(with_tickets: bool) -> str:
    # The counted tickets of the period with their repeat test (`repeated`), as the desk's rates count them.
    counted = counted_sql(f"t.reported_at >= :start_at AND t.reported_at < :end_at AND {counts_sql('t')}")
    ticket_part = f"""
        , tickets AS (
            SELECT cp.property_company_id AS company_id,
                   count(*) FILTER (WHERE {answered_sql('t')}) AS rated,
                   count(*) FILTER (WHERE {answered_sql('t')} AND {satisfied_sql('t')}) AS satisfied,
                   count(*) AS valid_tickets,
                   count(*) FILTER (WHERE t.state = 'closed') AS closed,
                   count(*) FILTER (WHERE {resolved_sql('t', 't.repeated')}) AS resolved,
                   count(*) FILTER (WHERE t.repeated) AS repeated,
                   count(*) FILTER (WHERE t.state = 'closed' AND {refuted_sql('t')}) AS callback_unsolved
            FROM {counted} JOIN complaint c ON c.id = t.complaint_id
            JOIN category k ON k.code = c.category_code AND k.responsible_kind = 'property_company'
            JOIN compound cp ON cp.code = c.compound_code AND cp.valid_to IS NULL
            WHERE c.reported_at >= :start_at AND c.reported_at < :end_at AND cp.property_company_id IS NOT NULL
            GROUP BY 1
        )""" if with_tickets else ""
    names = ("rated", "satisfied", "valid_tickets", "closed", "resolved", "repeated", "callback_unsolved")
    ticket_columns = ", ".join(f"tickets.{name}" if with_tickets else f"NULL::bigint AS {name}" for name in names)
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
            SELECT company_id, count(*) AS ratings, avg(score) AS all_ratings_score,
                   count(*) FILTER (WHERE rater_level = 'street') AS street_ratings,
                   avg(score) FILTER (WHERE rater_level = 'street') AS street_only_score,
                   count(*) FILTER (WHERE rater_level = 'community') AS community_ratings,
                   avg(score) FILTER (WHERE rater_level = 'community') AS community_only_score
            FROM company_rating WHERE period = :period GROUP BY 1
        ),
        surveys AS (
            SELECT company_id, count(*) AS surveys, sum(sample_size) AS survey_sample,
                   sum(score * sample_size) / sum(sample_size) AS survey_score
            FROM satisfaction_survey WHERE surveyed_on >= :start AND surveyed_on < :end GROUP BY 1
        ){ticket_part}
        SELECT pc.id AS company_id, pc.name, pc.credit_code, managed.compounds, managed.households,
               coalesce(complaints.complaints, 0) AS complaints,
               coalesce(inspections.inspections, 0) AS inspections, inspections.regulator_score,
               coalesce(ratings.ratings, 0) AS ratings, ratings.all_ratings_score,
               coalesce(ratings.street_ratings, 0) AS street_ratings, ratings.street_only_score,
               coalesce(ratings.community_ratings, 0) AS community_ratings, ratings.community_only_score,
               coalesce(surveys.surveys, 0) AS surveys, coalesce(surveys.survey_sample, 0) AS survey_sample,
               surveys.survey_score, {ticket_columns}
        FROM property_company pc
        JOIN managed ON managed.company_id = pc.id
        LEFT JOIN complaints ON complaints.company_id = pc.id
        LEFT JOIN inspections ON inspections.company_id = pc.id
        LEFT JOIN ratings ON ratings.company_id = pc.id
        LEFT JOIN surveys ON surveys.company_id = pc.id
        {ticket_join}
        ORDER BY pc.id
    """


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


EVALUATION_COLUMNS = [
    "rank", "company_id", "name", "credit_code", "standing", "grade", "flagged_for_exit", "total_score",
    "residents_score", "regulator_score", "street_score", "community_score", "compounds", "households",
    "complaints", "complaint_rate_per_1000", "complaint_rate_score", "satisfaction", "resolution_rate",
    "survey_score", "survey_sample", "inspections", "ratings", "previous_standing", "insufficient_data", "inputs",
]


def _sample_checks(row: dict, settings: EvaluationSettings, weights: tuple[float, ...]) -> list[str]:
    """What a company lacks to be ranked, in Chinese (empty when its data suffice)."""
    missing = []
    if weights[0] > 0 and row["residents_score"] is None:
        missing.append("无居民评价数据（管理户数为 0）")
    if weights[1] > 0 and row["inspections"] < settings.min_inspections:
        missing.append(f"行业主管部门检查 {row['inspections']} 次，少于 {settings.min_inspections} 次")
    if (weights[2] > 0 or weights[3] > 0) and row["ratings"] < settings.min_ratings:
        missing.append(f"街道、社区评分 {row['ratings']} 个，少于 {settings.min_ratings} 个")
    if weights[3] > 0 and weights[2] > 0 and row["street_ratings"] == 0:
        missing.append("无街道评分")
    if weights[3] > 0 and row["community_ratings"] == 0:
        missing.append("无社区党组织评分")
    return missing


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
              "period": period.label, **repeat_params()}
    rows = [dict(r) for r in conn.execute(text(_inputs_sql(with_tickets)), params).mappings()]
    if not rows:
        raise NotFound("没有管理小区的物业服务企业，无可评价")

    least = settings.min_ticket_sample
    for row in rows:
        households = row["households"] or 0
        row["complaint_rate_per_1000"] = row["complaints"] * 1000.0 / households if households else None
        # A share of fewer tickets than the minimum sample says nothing (one rated ticket is 0 or 100).
        row["satisfaction"] = (100.0 * row["satisfied"] / row["rated"]
                               if from_tickets["satisfaction"] and (row["rated"] or 0) >= max(least, 1) else None)
        row["resolution_rate"] = (100.0 * row["resolved"] / row["valid_tickets"]
                                  if from_tickets["resolution_rate"] and (row["valid_tickets"] or 0) >= max(least, 1)
                                  else None)
        row["survey_score"] = (float(row["survey_score"]) if row["survey_score"] is not None
                               and row["survey_sample"] >= max(settings.min_survey_sample, 1) else None)
        split = weights[3] > 0
        row["street_score"] = row["street_only_score"] if split else row["all_ratings_score"]
        row["community_score"] = row["community_only_score"] if split else None
    rates = [r["complaint_rate_per_1000"] for r in rows if r["complaint_rate_per_1000"] is not None]
    low, high = (min(rates), max(rates)) if rates else (0.0, 0.0)
    for row in rows:
        rate = row["complaint_rate_per_1000"]
        row["complaint_rate_score"] = None if rate is None else (
            100.0 if high == low else 100.0 * (high - rate) / (high - low))
        used = {name: row[name] for name in ("complaint_rate_score", "survey_score", "satisfaction",
                                             "resolution_rate") if row[name] is not None}
        row["residents_score"] = _mean(list(used.values()))
        missing = _sample_checks(row, settings, weights)
        row["insufficient_data"] = bool(missing)
        row["inputs"] = {"residents": sorted(used), "tickets": with_tickets, "neutral": [],
                         "complaint_rate_score": row["complaint_rate_score"], "insufficient": missing,
                         "ticket_sample": {"rated": row["rated"], "valid": row["valid_tickets"],
                                           **{name: row[name] for name in ("closed", "resolved", "repeated",
                                                                           "callback_unsolved")}},
                         "survey_sample": row["survey_sample"]}

    # A part without inputs (only ever in a company listed as insufficient data) takes the mean of the ranked
    # companies, so what it shows is neither helped nor hurt by the gap.
    for index, part in enumerate(PARTS):
        if weights[index] == 0 and part == "community_score":
            continue
        neutral = _mean([r[part] for r in rows if not r["insufficient_data"]])
        if neutral is None:
            neutral = _mean([r[part] for r in rows])
        for row in rows:
            if row[part] is None:
                row[part] = neutral if neutral is not None else 0.0
                row["inputs"]["neutral"].append(part)
    total_weight = sum(weights)
    for row in rows:
        row["total_score"] = sum(w * (row[part] or 0.0) for w, part in zip(weights, PARTS)) / total_weight

    red_count, black_count = _rank(rows, settings, _stored_standings(conn, period.previous().label))
    rectified = _passed_rectifications(conn, period.previous().label)
    for row in rows:
        row["flagged_for_exit"] = (row["standing"] == "black" and row["previous_standing"] == "black"
                                   and row["company_id"] not in rectified)
    n = len(rows)
    weight_names = {"residents": weights[0], "regulator": weights[1], "street_and_community": weights[2]}
    if weights[3] > 0:
        weight_names = {"residents": weights[0], "regulator": weights[1], "street": weights[2],
                        "community_party": weights[3]}
    meta = {
        "period": period.label, "companies": n, "red": red_count, "black": black_count,
        "ranked": sum(not r["insufficient_data"] for r in rows),
        "insufficient_data": sum(r["insufficient_data"] for r in rows),
        "minimum_sample": {"inspections": settings.min_inspections, "ratings": settings.min_ratings,
                           "tickets": settings.min_ticket_sample, "survey_respondents": settings.min_survey_sample},
        "weights": weight_names,
        "residents_inputs": ["complaint_rate_score", *(["survey_score"] if any(
            r["survey_score"] is not None for r in rows) else []),
            *(name for name, used in from_tickets.items() if used)],
        "tickets_used": with_tickets, "repeat_window_days": params[WINDOW_PARAM],
        "previous_period": period.previous().label,
        "excellent_score": settings.excellent_score,
    }
    for row in rows:
        row["inputs"] = json.dumps(row["inputs"], ensure_ascii=False)
    return Figure(f"evaluation_{period.label}", EVALUATION_COLUMNS, rows, meta)


def _rank(rows: list[dict], settings: EvaluationSettings, previous: dict[int, str]) -> tuple[int, int]:
    """Order by total (then residents' score, then company), name the top and bottom shares red and black, grade
    and round; returns how many are red and black."""
    rows.sort(key=lambda r: (r.get("insufficient_data", False), -round(r["total_score"], 9),
                             -round(r["residents_score"], 9), r["company_id"]))
    n = sum(not r.get("insufficient_data", False) for r in rows)
    red_count = max(1, math.floor(n * settings.red_share)) if n >= 2 and settings.red_share > 0 else 0
    black_count = max(1, math.floor(n * settings.black_share)) if n >= 2 and settings.black_share > 0 else 0
    black_count = min(black_count, n - red_count)
    for index, row in enumerate(rows):
        row.setdefault("insufficient_data", False)
        if row["insufficient_data"]:
            row["rank"], row["standing"], row["grade"] = None, "none", "insufficient"
        else:
            row["rank"] = index + 1
            row["standing"] = "red" if index < red_count else "black" if index >= n - black_count else "none"
            row["grade"] = ("black" if row["standing"] == "black" else
                            "excellent" if row["standing"] == "red" or row["total_score"] >= settings.excellent_score
                            else "qualified")
        row["previous_standing"] = previous.get(row["company_id"])
        for key in ("total_score", "residents_score", "regulator_score", "street_score", "community_score",
                    "complaint_rate_per_1000", "complaint_rate_score", "satisfaction", "resolution_rate",
                    "survey_score"):
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
               e.regulator_score, e.street_score, (d.inputs->>'community_score')::float AS community_score,
               d.compounds, d.households, d.complaints, d.satisfaction, d.resolution_rate,
               (d.inputs->>'survey_score')::float AS survey_score, (d.inputs->>'survey_sample')::int AS survey_sample,
               d.inspections, d.ratings, (d.inputs->>'complaint_rate_score')::float AS rate_score,
               d.grade = 'insufficient' AS insufficient
        FROM company_evaluation e JOIN evaluation_detail d ON d.evaluation_id = e.id
        JOIN property_company pc ON pc.id = e.company_id
        WHERE e.period = ANY(:halves) ORDER BY e.company_id, e.period
    """), {"halves": halves}).mappings()]
    if not found:
        raise NotFound(f"{period.label} 年尚无已保存的半年评价：请先评价 {halves[0]} 和 {halves[1]}")
    companies: dict[int, list[dict]] = {}
    for row in found:
        companies.setdefault(row["company_id"], []).append(row)
    rows = []
    for company_id, every_half in companies.items():
        latest = every_half[-1]
        # Only halves with enough data count; a company without one is listed as insufficient data.
        parts = [part for part in every_half if not part["insufficient"]] or every_half
        households = latest["households"] or 0
        complaints = sum(part["complaints"] or 0 for part in parts)
        rows.append({
            "company_id": company_id, "name": latest["name"], "credit_code": latest["credit_code"],
            **{key: _mean([part[key] for part in parts]) for key in (
                "total_score", "residents_score", "regulator_score", "street_score", "community_score",
                "satisfaction", "resolution_rate", "survey_score")},
            "survey_sample": sum(part["survey_sample"] or 0 for part in parts),
            "insufficient_data": all(part["insufficient"] for part in every_half),
            "complaint_rate_score": _mean([part["rate_score"] for part in parts]),
            "compounds": latest["compounds"], "households": households, "complaints": complaints,
            "complaint_rate_per_1000": complaints * 1000.0 / households if households else None,
            "inspections": sum(part["inspections"] or 0 for part in parts),
            "ratings": sum(part["ratings"] or 0 for part in parts),
            "inputs": json.dumps({"halves": [part["period"] for part in parts],
                                  "half_standings": [part["standing"] for part in every_half],
                                  "complaint_rate_score": _mean([part["rate_score"] for part in parts])},
                                 ensure_ascii=False),
            "_black_halves": sum(part["standing"] == "black" for part in every_half),
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
        raise InvalidInput(f"评价按半年（YYYYH1、YYYYH2）或年终（YYYY）进行，{label!r} 不是")
    return period


def _passed_rectifications(conn: Connection, period_label: str) -> set[int]:
    """Companies whose rectification task of a half-year was followed up as passed."""
    return set(conn.execute(text("SELECT company_id FROM rectification_task WHERE period = :period "
                                 "AND result = 'passed'"), {"period": period_label}).scalars())


def _stored_standings(conn: Connection, period_label: str) -> dict[int, str]:
    return dict(conn.execute(text("SELECT company_id, standing FROM company_evaluation WHERE period = :period"),
                             {"period": period_label}).all())


def store_evaluation(conn: Connection, figure: Figure) -> int:
    """Write (or replace) the period's evaluations and their detail; the caller commits."""
    period = figure.meta["period"]
    conn.execute(text("DELETE FROM company_evaluation WHERE period = :period"), {"period": period})
    for row in figure.rows:
        inputs = json.loads(row["inputs"])
        inputs.update({key: row.get(key) for key in ("community_score", "survey_score", "survey_sample")})
        row = {**row, "inputs": json.dumps(inputs, ensure_ascii=False)}
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
        """), {**row, "evaluation_id": evaluation_id,
               "companies_ranked": sum(not r["insufficient_data"] for r in figure.rows)})
    return len(figure.rows)


def evaluate(conn: Connection, period_label: str, settings: EvaluationSettings | None = None) -> Figure:
    """Compute and store the evaluation of a half-year, or the year-end one of a year (replacing an earlier run
    of the same period)."""
    if evaluation_period(period_label).kind == "year":
        figure = compute_year_end(conn, period_label, settings)
        store_evaluation(conn, figure)
        return figure
    figure = compute_evaluation(conn, period_label, settings)
    store_evaluation(conn, figure)
    figure.meta["rectification_tasks"] = open_tasks(conn, figure, settings or evaluation_settings())
    return figure


def stored_evaluation(conn: Connection, period_label: str) -> Figure | None:
    """The evaluation as stored for a half-year or a year, or None when it has not been run."""
    period = evaluation_period(period_label)
    rows = [dict(r) for r in conn.execute(text("""
        SELECT d.rank, e.company_id, pc.name, pc.credit_code, e.standing, d.grade, d.flagged_for_exit,
               e.total_score, e.residents_score, e.regulator_score, e.street_score, d.compounds, d.households,
               (d.inputs->>'community_score')::float AS community_score,
               d.complaints, d.complaint_rate_per_1000,
               (d.inputs->>'complaint_rate_score')::float AS complaint_rate_score,
               d.satisfaction, d.resolution_rate, (d.inputs->>'survey_score')::float AS survey_score,
               (d.inputs->>'survey_sample')::int AS survey_sample, d.inspections, d.ratings,
               prev.standing AS previous_standing, d.grade = 'insufficient' AS insufficient_data,
               d.inputs::text AS inputs
        FROM company_evaluation e JOIN evaluation_detail d ON d.evaluation_id = e.id
        JOIN property_company pc ON pc.id = e.company_id
        LEFT JOIN company_evaluation prev ON prev.company_id = e.company_id AND prev.period = :previous
        WHERE e.period = :period ORDER BY d.rank NULLS LAST, e.company_id
    """), {"period": period.label, "previous": period.previous().label}).mappings()]
    if not rows:
        return None
    meta = {"period": period.label, "companies": len(rows), "stored": True,
            "red": sum(r["standing"] == "red" for r in rows), "black": sum(r["standing"] == "black" for r in rows),
            "insufficient_data": sum(r["insufficient_data"] for r in rows)}
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
    """A company's credit file (信用档案): its evaluations over time, inspections, ratings, rectification tasks
    (deadline, items, result; not the follow-up's note or who wrote it) and the approved items of its credit file
    with its credit grade (pending and rejected items are not part of it)."""
    company = conn.execute(text("""
        SELECT pc.id, pc.name, pc.credit_code, pc.is_community_led, pc.has_party_org, pc.party_work_only,
               pc.founded_year,
               (SELECT count(*) FROM compound cp WHERE cp.property_company_id = pc.id AND cp.valid_to IS NULL)
                   AS compounds
        FROM property_company pc WHERE pc.id = :id
    """), {"id": company_id}).mappings().one_or_none()
    if company is None:
        raise NotFound(f"没有编号为 {company_id} 的物业服务企业")
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
    grade = next(g for g in credit_scores(conn) if g["company_id"] == company_id)
    info["credit_score"], info["credit_grade"] = grade["score"], grade["grade"]
    items = [dict(r) for r in conn.execute(text(
        "SELECT kind, category, title, occurred_on, reviewer_level, reviewed_at FROM credit_item "
        "WHERE company_id = :id AND status = 'approved' ORDER BY occurred_on, id"), {"id": company_id}).mappings()]
    rectifications = [dict(r) for r in conn.execute(text(
        "SELECT period, deadline, array_to_string(items, '；') AS items, result, followed_up_at "
        "FROM rectification_task WHERE company_id = :id ORDER BY period, id"), {"id": company_id}).mappings()]
    return {
        "rectifications": Figure("credit_file_rectifications", ["period", "deadline", "items", "result",
                                                                "followed_up_at"], rectifications,
                                 {"company_id": company_id}),
        "evaluations": Figure("credit_file_evaluations", list(history[0]) if history else
                              ["period", "total_score", "standing"], history, info),
        "inspections": Figure("credit_file_inspections", ["inspected_on", "compound_code", "score", "findings",
                                                          "note"], inspections, {"company_id": company_id}),
        "ratings": Figure("credit_file_ratings", ["period", "rater_level", "rater_code", "score"], ratings,
                          {"company_id": company_id}),
        "credit_items": Figure("credit_file_items", ["kind", "category", "title", "occurred_on", "reviewer_level",
                                                     "reviewed_at"], items,
                               {"company_id": company_id, "credit_grade": grade["grade"]}),
    }
