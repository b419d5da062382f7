"""Gi* hot spots on the `city` fixture: the aggregation in PostGIS (counts per area, queen neighbours) and the
statistic in numpy, timed separately, against esda's G_Local on the same counts and neighbours in the same run."""

from __future__ import annotations

import statistics
import time
import warnings

import numpy as np
from sqlalchemy import text

from gis.analytics import hotspots as core
from gis.analytics.periods import parse_period
from gis.db.engine import sync_engine


def _median_seconds(action, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _year_of_complaints(conn) -> str:
    first, last = conn.execute(text(
        "SELECT (min(reported_at) AT TIME ZONE 'Asia/Shanghai')::date, "
        "(max(reported_at) AT TIME ZONE 'Asia/Shanghai')::date FROM complaint")).one()
    return f"{first.isoformat()}..{last.isoformat()}"


def run(city_url: str) -> list[dict]:
    """Rows for each hot-spot level: counts and neighbours in PostGIS, Gi* with FDR bins and the permutation test in
    numpy, and hotspots() end to end, against esda when it is installed."""
    rows = []
    engine = sync_engine(city_url)
    with engine.connect() as conn:
        period = parse_period(_year_of_complaints(conn))
        complaints = conn.execute(text("SELECT count(*) FROM complaint")).scalar()
        for level in core.HOTSPOT_LEVELS:
            where, params = core._complaint_filter(period, None)
            count_sql = text(core._counts_sql(core.LEVELS[level], where, ""))
            counts_s, counted = _median_seconds(lambda: conn.execute(count_sql, params).all())
            core._NEIGHBOUR_CACHE.clear()
            started = time.perf_counter()
            codes, pairs = core.neighbour_pairs(conn, level)
            neighbours_s = time.perf_counter() - started
            values = np.array([row.complaints for row in counted], dtype=float)
            matrix = core.neighbour_matrix(len(codes), pairs)

            def statistic():
                z, p = core.gi_star(values, matrix)
                return core.fdr_bins(z, p)

            stat_s, bins = _median_seconds(statistic)
            perm_s, _ = _median_seconds(lambda: core.gi_star_permutation_p(values, matrix, 999, seed=1), repeat=1)
            end_to_end_s, figure = _median_seconds(lambda: core.hotspots(conn, level, period))
            peer_s = _esda_seconds(values, codes, pairs)
            n = len(codes)
            rows += [
                {"area": "hotspots", "metric": f"{level}: counts per area in PostGIS", "value": round(counts_s, 3),
                 "unit": "s", "note": f"{n:,} areas, {complaints:,} complaints in the table"},
                {"area": "hotspots", "metric": f"{level}: queen neighbours in PostGIS (cold)",
                 "value": round(neighbours_s, 3), "unit": "s",
                 "note": f"{len(pairs):,} pairs; cached per boundary version afterwards"},
                {"area": "hotspots", "metric": f"{level}: Gi* + FDR bins (numpy)", "value": round(stat_s, 4),
                 "unit": "s", "note": f"{int((bins > 0).sum())} hot, {int((bins < 0).sum())} cold; "
                                      + (f"esda G_Local (no permutations) {peer_s[0]:.3f} s = "
                                         f"{peer_s[0] / stat_s:.0f}× slower" if peer_s else "esda not installed")},
                {"area": "hotspots", "metric": f"{level}: Gi* conditional permutation, 999", "value": round(perm_s, 3),
                 "unit": "s", "note": (f"esda G_Local 999 permutations {peer_s[1]:.3f} s "
                                       f"(ratio {peer_s[1] / perm_s:.2f})" if peer_s else "")},
                {"area": "hotspots", "metric": f"{level}: hotspots() end to end, neighbours cached",
                 "value": round(end_to_end_s, 3), "unit": "s",
                 "note": f"aggregation {figure.meta['aggregation_seconds']:.3f} s + statistic "
                         f"{figure.meta['statistic_seconds']:.4f} s"},
            ]
    engine.dispose()
    return rows


def _esda_seconds(values: np.ndarray, codes: list[str], pairs: np.ndarray) -> tuple[float, float] | None:
    """esda's G_Local (star, binary) on the same neighbours: without and with 999 permutations."""
    try:
        from esda import G_Local
        from libpysal.weights import W
    except ImportError:
        return None
    neighbours = {i: [] for i in range(len(codes))}
    for a, b in pairs.tolist():
        neighbours[a].append(b)
        neighbours[b].append(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weights = W(neighbours, silence_warnings=True)
        analytic, _ = _median_seconds(lambda: G_Local(values, weights, transform="B", star=True, permutations=0))
        permuted, _ = _median_seconds(
            lambda: G_Local(values, weights, transform="B", star=True, permutations=999, seed=1, n_jobs=1), repeat=1)
    return analytic, permuted
