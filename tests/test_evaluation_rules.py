"""The red/black list's rules (红黑榜) one by one, on figures written out here (gis/analytics/evaluation.py's
docstring, README "Evaluation"): the settings' bounds, the mean of the parts present, what a company lacks to be
ranked, the order, the red and black shares, the grades, the rounding, and the periods an evaluation runs over.

`test_analytics_evaluation.py` and `test_evaluation_inputs.py` recompute whole evaluations with pandas from the
raw tables; these check each rule on cases small enough to work out by hand, fast enough to run against each of
the module's mutants.
"""

from __future__ import annotations

import pytest

from gis.analytics.evaluation import _check_settings, _mean, _rank, _sample_checks, evaluation_period, scheme_settings
from gis.errors import InvalidInput
from gis.settings import EvaluationSettings

WEIGHTS_REFUSED = "评价权重不能为负数，也不能全部为零"
SHARES_REFUSED = "红榜、黑榜比例须在 0 到 0.5 之间"
SAMPLES_REFUSED = "最小样本量不能为负数"


def settings(**changes) -> EvaluationSettings:
    """The documented defaults (5 : 3 : 2, 10 % red and black, excellent from 90, least samples 2, 2, 10, 30)
    with `changes`; written out so a change of a default does not pass unseen."""
    values = dict(residents_weight=5.0, regulator_weight=3.0, street_weight=2.0, community_weight=0.0,
                  min_inspections=2, min_ratings=2, min_ticket_sample=10, min_survey_sample=30, red_share=0.1,
                  black_share=0.1, excellent_score=90.0)
    return EvaluationSettings(**{**values, **changes})


# -- settings -----------------------------------------------------------------------------------------------------


def test_the_weights_are_returned_in_the_order_of_the_parts():
    assert _check_settings(settings(community_weight=1.5)) == (5.0, 3.0, 2.0, 1.5)


@pytest.mark.parametrize("changes", [dict(residents_weight=-1.0), dict(regulator_weight=-0.5),
                                     dict(street_weight=-2.0), dict(community_weight=-1.0),
                                     dict(residents_weight=0.0, regulator_weight=0.0, street_weight=0.0)])
def test_negative_or_all_zero_weights_are_refused(changes):
    with pytest.raises(InvalidInput) as refused:
        _check_settings(settings(**changes))
    assert str(refused.value) == WEIGHTS_REFUSED


def test_one_weight_alone_is_enough():
    assert _check_settings(settings(residents_weight=0.0, regulator_weight=0.0, street_weight=0.0,
                                    community_weight=0.1)) == (0.0, 0.0, 0.0, 0.1)
    assert _check_settings(settings(regulator_weight=0.0, street_weight=0.0)) == (5.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("changes", [dict(red_share=0.51), dict(black_share=0.51), dict(red_share=-0.01),
                                     dict(black_share=-0.01)])
def test_shares_outside_0_to_half_are_refused(changes):
    with pytest.raises(InvalidInput) as refused:
        _check_settings(settings(**changes))
    assert str(refused.value) == SHARES_REFUSED


def test_shares_at_their_bounds_are_accepted():
    for red, black in ((0.0, 0.0), (0.5, 0.5), (0.0, 0.5), (0.5, 0.0)):
        assert _check_settings(settings(red_share=red, black_share=black)) == (5.0, 3.0, 2.0, 0.0)


@pytest.mark.parametrize("name", ["min_inspections", "min_ratings", "min_ticket_sample", "min_survey_sample"])
def test_a_negative_least_sample_is_refused_and_zero_accepted(name):
    with pytest.raises(InvalidInput) as refused:
        _check_settings(settings(**{name: -1}))
    assert str(refused.value) == SAMPLES_REFUSED
    assert _check_settings(settings(**{name: 0})) == (5.0, 3.0, 2.0, 0.0)


def test_the_named_schemes():
    panshi, taian = scheme_settings("panshi"), scheme_settings("taian")
    assert (panshi.residents_weight, panshi.regulator_weight, panshi.street_weight, panshi.community_weight) == (
        5.0, 3.0, 2.0, 0.0)
    assert (taian.residents_weight, taian.regulator_weight, taian.street_weight, taian.community_weight) == (
        2.0, 1.0, 1.0, 6.0)
    with pytest.raises(InvalidInput) as refused:
        scheme_settings("jinan")
    assert str(refused.value) == "没有名为 'jinan' 的评价权重方案（可选：panshi、taian）"


def test_the_periods_an_evaluation_runs_over():
    assert evaluation_period("2026H1").kind == "half"
    assert evaluation_period("2026H2").label == "2026H2"
    assert evaluation_period("2026").kind == "year"
    for label in ("2026Q1", "2026-03"):
        with pytest.raises(InvalidInput) as refused:
            evaluation_period(label)
        assert str(refused.value) == f"评价按半年（YYYYH1、YYYYH2）或年终（YYYY）进行，{label!r} 不是"


# -- the mean of the parts present ------------------------------------------------------------------------------


def test_the_mean_leaves_out_what_is_missing():
    assert _mean([80.0, None, 60.0]) == 70.0
    assert _mean([90.0]) == 90.0
    assert _mean([0.0, 0.0]) == 0.0
    assert _mean([None, None]) is None
    assert _mean([]) is None


# -- what a company lacks to be ranked ---------------------------------------------------------------------------


def company(**values) -> dict:
    row = dict(residents_score=70.0, inspections=2, ratings=2, street_ratings=1, community_ratings=1)
    row.update(values)
    return row


def test_enough_data_lacks_nothing():
    assert _sample_checks(company(), settings(), (5, 3, 2, 0)) == []
    assert _sample_checks(company(), settings(), (2, 1, 1, 6)) == []


def test_each_lack_is_named():
    s = settings()
    assert _sample_checks(company(residents_score=None), s, (5, 3, 2, 0)) == ["无居民评价数据（管理户数为 0）"]
    assert _sample_checks(company(inspections=1), s, (5, 3, 2, 0)) == ["行业主管部门检查 1 次，少于 2 次"]
    assert _sample_checks(company(ratings=1), s, (5, 3, 2, 0)) == ["街道、社区评分 1 个，少于 2 个"]
    assert _sample_checks(company(street_ratings=0, ratings=2), s, (2, 1, 1, 6)) == ["无街道评分"]
    assert _sample_checks(company(community_ratings=0), s, (2, 1, 1, 6)) == ["无社区党组织评分"]
    assert _sample_checks(company(residents_score=None, inspections=0, ratings=0, street_ratings=0,
                                  community_ratings=0), s, (2, 1, 1, 6)) == [
        "无居民评价数据（管理户数为 0）", "行业主管部门检查 0 次，少于 2 次", "街道、社区评分 0 个，少于 2 个",
        "无街道评分", "无社区党组织评分"]


def test_a_part_without_weight_needs_no_data():
    s = settings()
    thin = company(residents_score=None, inspections=0, ratings=0, street_ratings=0, community_ratings=0)
    assert _sample_checks(thin, s, (0, 0, 0, 1)) == ["街道、社区评分 0 个，少于 2 个", "无社区党组织评分"]
    assert _sample_checks(thin, s, (0, 0, 1, 0)) == ["街道、社区评分 0 个，少于 2 个"]
    assert _sample_checks(thin, s, (0, 1, 0, 0)) == ["行业主管部门检查 0 次，少于 2 次"]
    assert _sample_checks(thin, s, (1, 0, 0, 0)) == ["无居民评价数据（管理户数为 0）"]
    # without a street weight the street's ratings are not asked for, the community's still are
    assert _sample_checks(company(street_ratings=0), s, (1, 1, 0, 1)) == []


def test_the_least_samples_are_the_settings():
    assert _sample_checks(company(inspections=4, ratings=4), settings(min_inspections=5, min_ratings=5),
                          (5, 3, 2, 0)) == ["行业主管部门检查 4 次，少于 5 次", "街道、社区评分 4 个，少于 5 个"]
    assert _sample_checks(company(inspections=5, ratings=5), settings(min_inspections=5, min_ratings=5),
                          (5, 3, 2, 0)) == []


# -- order, red and black, grades ----------------------------------------------------------------------------------


def ranked(totals: list[float], residents: list[float] | None = None, insufficient: set[int] = frozenset(),
           previous: dict[int, str] | None = None, **changes) -> tuple[list[dict], tuple[int, int]]:
    """Companies 1..n with the given totals (and residents' scores), ranked."""
    rows = [{"company_id": i + 1, "total_score": total,
             "residents_score": (residents or totals)[i], "insufficient_data": i + 1 in insufficient}
            for i, total in enumerate(totals)]
    counts = _rank(rows, settings(**changes), previous or {})
    return rows, counts


def test_companies_are_ordered_by_total_then_residents_then_id():
    rows, _ = ranked([70.0, 80.0, 80.0, 80.0, 60.0], residents=[50.0, 60.0, 70.0, 60.0, 90.0])
    assert [r["company_id"] for r in rows] == [3, 2, 4, 1, 5]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]


def test_totals_equal_to_nine_decimals_are_a_tie():
    rows, _ = ranked([80.0 + 1e-12, 80.0], residents=[60.0, 70.0])
    assert [r["company_id"] for r in rows] == [2, 1]


def test_the_top_and_bottom_tenth_are_red_and_black():
    rows, counts = ranked([float(100 - i) for i in range(20)])
    assert counts == (2, 2)
    assert [r["standing"] for r in rows] == ["red"] * 2 + ["none"] * 16 + ["black"] * 2


def test_at_least_one_red_and_one_black_from_two_companies():
    rows, counts = ranked([60.0, 50.0])
    assert counts == (1, 1)
    assert [r["standing"] for r in rows] == ["red", "black"]
    rows, counts = ranked([60.0, 50.0, 40.0])
    assert counts == (1, 1) and [r["standing"] for r in rows] == ["red", "none", "black"]


def test_one_company_is_neither_red_nor_black():
    rows, counts = ranked([60.0])
    assert counts == (0, 0) and rows[0]["standing"] == "none" and rows[0]["rank"] == 1


def test_a_share_of_zero_names_nobody():
    rows, counts = ranked([60.0, 50.0, 40.0], red_share=0.0)
    assert counts == (0, 1) and [r["standing"] for r in rows] == ["none", "none", "black"]
    rows, counts = ranked([60.0, 50.0, 40.0], black_share=0.0)
    assert counts == (1, 0) and [r["standing"] for r in rows] == ["red", "none", "none"]


def test_shares_are_floored():
    rows, counts = ranked([float(100 - i) for i in range(19)])
    assert counts == (1, 1)
    rows, counts = ranked([float(100 - i) for i in range(10)], red_share=0.3, black_share=0.2)
    assert counts == (3, 2)
    assert [r["standing"] for r in rows] == ["red"] * 3 + ["none"] * 5 + ["black"] * 2


def test_black_never_takes_a_red_company():
    rows, counts = ranked([60.0, 50.0, 40.0], red_share=0.5, black_share=0.5)
    assert counts == (1, 1)
    rows, counts = ranked([60.0, 50.0], red_share=0.5, black_share=0.5)
    assert counts == (1, 1) and [r["standing"] for r in rows] == ["red", "black"]
    rows, counts = ranked([60.0, 50.0, 40.0, 30.0], red_share=0.5, black_share=0.5)
    assert counts == (2, 2) and [r["standing"] for r in rows] == ["red", "red", "black", "black"]


def test_insufficient_data_is_listed_last_unranked_and_uncounted():
    rows, counts = ranked([95.0, 50.0, 40.0, 30.0], insufficient={1, 3})
    assert [r["company_id"] for r in rows] == [2, 4, 1, 3]
    assert [r["rank"] for r in rows] == [1, 2, None, None]
    assert [r["standing"] for r in rows] == ["red", "black", "none", "none"]
    assert [r["grade"] for r in rows] == ["excellent", "black", "insufficient", "insufficient"]
    assert counts == (1, 1)
    rows, counts = ranked([95.0, 50.0], insufficient={1})
    assert counts == (0, 0) and rows[0]["standing"] == "none" and rows[0]["rank"] == 1


def test_a_row_without_the_flag_counts_as_sufficient():
    rows = [{"company_id": 1, "total_score": 60.0, "residents_score": 60.0},
            {"company_id": 2, "total_score": 70.0, "residents_score": 60.0}]
    assert _rank(rows, settings(), {}) == (1, 1)
    assert [(r["company_id"], r["standing"], r["insufficient_data"]) for r in rows] == [
        (2, "red", False), (1, "black", False)]


def test_grades():
    rows, _ = ranked([95.0, 90.0, 89.99, 70.0, 20.0] + [50.0] * 5)
    grades = {r["company_id"]: r["grade"] for r in rows}
    # red is excellent; 90 and above excellent; below it qualified; black is black whatever its score
    assert grades == {1: "excellent", 2: "excellent", 3: "qualified", 4: "qualified", 5: "black",
                      6: "qualified", 7: "qualified", 8: "qualified", 9: "qualified", 10: "qualified"}
    rows, _ = ranked([40.0, 30.0, 20.0])
    assert [r["grade"] for r in rows] == ["excellent", "qualified", "black"]
    rows, _ = ranked([99.0, 98.0, 97.0], black_share=0.34)
    assert [r["grade"] for r in rows] == ["excellent", "excellent", "black"]
    rows, _ = ranked([80.0, 70.0, 60.0], excellent_score=70.0)
    assert [r["grade"] for r in rows] == ["excellent", "excellent", "black"]


def test_the_previous_standing_is_carried():
    rows, _ = ranked([60.0, 50.0, 40.0], previous={1: "black", 3: "red"})
    assert {r["company_id"]: r["previous_standing"] for r in rows} == {1: "black", 2: None, 3: "red"}


def test_scores_are_rounded_to_four_decimals():
    keys = ("total_score", "residents_score", "regulator_score", "street_score", "community_score",
            "complaint_rate_per_1000", "complaint_rate_score", "satisfaction", "resolution_rate", "survey_score")
    row = {key: 1 / 3 for key in keys}
    row.update(company_id=1, complaints=7)
    other = {key: None for key in keys}
    other.update(company_id=2, total_score=0.1, residents_score=0.1)
    _rank([row, other], settings(), {})
    assert all(row[key] == 0.3333 and isinstance(row[key], float) for key in keys)
    assert row["complaints"] == 7
    assert all(other[key] is None for key in keys if key not in ("total_score", "residents_score"))


def test_a_community_weight_below_one_still_asks_for_street_ratings():
    assert _sample_checks(company(street_ratings=0), settings(), (5, 3, 2, 0.5)) == ["无街道评分"]


def test_totals_apart_by_a_fraction_are_not_a_tie():
    rows, _ = ranked([80.2, 80.4], residents=[90.0, 50.0])
    assert [r["company_id"] for r in rows] == [2, 1]
    rows, _ = ranked([80.0, 80.0], residents=[60.2, 60.4])
    assert [r["company_id"] for r in rows] == [2, 1]
    # a billionth apart is float noise, not a difference: the next key decides
    rows, _ = ranked([80.0 + 3e-10, 80.0], residents=[60.0, 70.0])
    assert [r["company_id"] for r in rows] == [2, 1]
    rows, _ = ranked([80.0, 80.0], residents=[60.0, 60.0 + 3e-10])
    assert [r["company_id"] for r in rows] == [1, 2]


def test_a_row_without_the_flag_ranks_among_the_sufficient():
    rows = [{"company_id": 1, "total_score": 90.0, "residents_score": 60.0, "insufficient_data": True},
            {"company_id": 2, "total_score": 50.0, "residents_score": 60.0, "insufficient_data": False},
            {"company_id": 3, "total_score": 60.0, "residents_score": 60.0}]
    assert _rank(rows, settings(), {}) == (1, 1)
    assert [(r["company_id"], r["rank"], r["standing"]) for r in rows] == [(3, 1, "red"), (2, 2, "black"),
                                                                           (1, None, "none")]


def test_black_is_counted_apart_from_red_whatever_the_shares():
    """The year-end list ranks with the settings as given: shares beyond one half still never count a company
    both red and black."""
    rows, counts = ranked([60.0, 50.0, 40.0, 30.0], red_share=0.8, black_share=0.8)
    assert counts == (3, 1)
    assert [r["standing"] for r in rows] == ["red", "red", "red", "black"]
