"""Where complaints cluster: counts and rates per area, Getis-Ord Gi* hot and cold spots with a false-discovery-rate
correction, H3 hexagon bins and emerging hotspots (this period against a baseline).

The aggregation (counts, households, neighbours) is SQL in PostGIS, one round trip each; the statistic is numpy over
a sparse neighbour matrix, so a city of 5,000 grids takes well under a second once the counts are in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # scipy is imported where used: it costs seconds at app start-up
    from scipy import sparse
from sqlalchemy import Connection, text

from gis.analytics.figures import Figure
from gis.analytics.periods import Period
from gis.errors import InvalidInput


@dataclass(frozen=True)
class AreaLevel:
    """A level of the pyramid complaints are counted on."""

    name: str
    complaint_column: str
    parent_column: str
    households_sql: str  # households of area `a`


LEVELS: dict[str, AreaLevel] = {
    level.name: level
    for level in (
        AreaLevel("micro_grid", "micro_grid_code", "grid_code", "a.households"),
        AreaLevel("grid", "grid_code", "community_code", "a.households"),
        AreaLevel(
            "community", "community_code", "street_code",
            "(SELECT coalesce(sum(g.households), 0) FROM grid g "
            "WHERE g.valid_to IS NULL AND g.community_code = a.code)",
        ),
        AreaLevel(
            "street", "street_code", "district_code",
            "(SELECT coalesce(sum(g.households), 0) FROM grid g JOIN community c "
            "ON c.code = g.community_code AND c.valid_to IS NULL "
            "WHERE g.valid_to IS NULL AND c.street_code = a.code)",
        ),
    )
}
HOTSPOT_LEVELS = ("micro_grid", "grid")
"""Gi* runs on the small areas, where neighbours are many and comparable."""

CONFIDENCE_LEVELS = ((0.10, 1), (0.05, 2), (0.01, 3))
"""(significance, bin) pairs: bins ±1, ±2, ±3 are 90 %, 95 % and 99 % confidence, as in optimized hot spot
analysis."""

NEIGHBOUR_TOLERANCE_DEG = 1e-6
"""Boundaries closer than this (about 0.1 m) count as touching, so tiny digitising gaps do not cut neighbours."""


MAX_PERMUTATION_CELLS = 30_000_000
"""Bound on permutations × areas of the permutation test: its draw table holds 4 bytes per cell (120 MB here),
so 9,999 permutations over a city's 27,404 micro-grids (1.1 GB) are refused rather than run."""
MAX_SEED = 2**63 - 1
"""Seeds of the permutation test: numpy's generators take non-negative integers only."""


def get_level(name: str, allowed: tuple[str, ...] | None = None) -> AreaLevel:
    """The statistical unit called `name`, or InvalidInput naming the levels `allowed` (all when None)."""
    allowed = allowed or tuple(LEVELS)
    if name not in allowed:
        raise InvalidInput(f"level must be one of {', '.join(allowed)}, not {name!r}")
    return LEVELS[name]


def check_categories(conn: Connection, categories: list[str] | None) -> list[str] | None:
    """The category codes asked for, all of them known; None means every category."""
    if not categories:
        return None
    known = set(conn.execute(text("SELECT code FROM category WHERE code = ANY(:codes)"),
                             {"codes": list(categories)}).scalars())
    unknown = sorted(set(categories) - known)
    if unknown:
        raise InvalidInput(f"unknown category codes: {', '.join(unknown)}")
    return sorted(set(categories))


def _complaint_filter(period: Period, categories: list[str] | None, alias: str = "c") -> tuple[str, dict]:
    where = f"{alias}.reported_at >= :start_at AND {alias}.reported_at < :end_at"
    params = {"start_at": period.start_at, "end_at": period.end_at}
    if categories:
        where += f" AND {alias}.category_code = ANY(:categories)"
        params["categories"] = categories
    return where, params


def _counts_sql(level: AreaLevel, where: str, area_filter: str) -> str:
    return f"""
        WITH counts AS (
            SELECT c.{level.complaint_column} AS code, count(*) AS complaints
            FROM complaint c WHERE {where} AND c.{level.complaint_column} IS NOT NULL GROUP BY 1
        )
        SELECT a.code, a.name, a.{level.parent_column} AS parent_code, {level.households_sql} AS households,
               coalesce(counts.complaints, 0) AS complaints
        FROM {level.name} a LEFT JOIN counts ON counts.code = a.code
        WHERE a.valid_to IS NULL {area_filter}
        ORDER BY a.code
    """


def _rate(complaints: np.ndarray, households: np.ndarray) -> np.ndarray:
    """Complaints per 1,000 households; undefined (NaN) where nobody lives."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(households > 0, complaints * 1000.0 / np.maximum(households, 1), np.nan)


def _period_totals(conn: Connection, level: AreaLevel, where: str, params: dict) -> dict:
    row = conn.execute(text(f"""
        SELECT count(*) AS total,
               count(*) FILTER (WHERE c.{level.complaint_column} IS NULL
                                   OR NOT EXISTS (SELECT 1 FROM {level.name} a
                                                  WHERE a.code = c.{level.complaint_column} AND a.valid_to IS NULL))
                   AS not_in_current_area
        FROM complaint c WHERE {where}
    """), params).mappings().one()
    return dict(row)


def complaint_counts(
    conn: Connection,
    level_name: str,
    period: Period,
    categories: list[str] | None = None,
    within: str | None = None,
) -> Figure:
    """Complaints and complaints per 1,000 households per current area of a level, for a period and categories.

    `within` is a code prefix (a street or community code) limiting the areas listed. Complaints that are on no
    current area of the level (unplaced, or on a retired boundary) are counted in `meta`, never silently lost.
    """
    level = get_level(level_name)
    categories = check_categories(conn, categories)
    where, params = _complaint_filter(period, categories)
    area_filter = ""
    if within:
        area_filter = "AND a.code LIKE :within"
        params["within"] = within + "%"
    rows = [dict(r) for r in conn.execute(text(_counts_sql(level, where, area_filter)), params).mappings()]
    complaints = np.array([r["complaints"] for r in rows], dtype=float)
    households = np.array([r["households"] for r in rows], dtype=float)
    for row, rate in zip(rows, _rate(complaints, households)):
        row["rate_per_1000"] = None if np.isnan(rate) else round(float(rate), 3)
    meta = {"level": level.name, "period": period.label, "categories": categories or "all", "within": within,
            **_period_totals(conn, level, where, {k: v for k, v in params.items() if k != "within"})}
    meta["complaints_listed"] = int(complaints.sum())
    return Figure(f"complaints_{level.name}", ["code", "name", "parent_code", "households", "complaints",
                                               "rate_per_1000"], rows, meta)


# --- neighbours -----------------------------------------------------------------------------------------------

_NEIGHBOUR_CACHE: dict[tuple, tuple[list[str], np.ndarray]] = {}


def _boundary_fingerprint(conn: Connection, table: str) -> tuple:
    row = conn.execute(text(
        f"SELECT current_database(), inet_server_port(), count(*), coalesce(sum(id), 0), max(valid_from) "
        f"FROM {table} WHERE valid_to IS NULL"
    )).one()
    return (table, *row)


def neighbour_pairs(conn: Connection, level_name: str) -> tuple[list[str], np.ndarray]:
    """Codes of the current areas (sorted) and the index pairs (i < j) of areas sharing a boundary or a corner
    (queen contiguity), found by PostGIS. Cached per boundary version, since boundaries change rarely."""
    level = get_level(level_name, HOTSPOT_LEVELS)
    key = _boundary_fingerprint(conn, level.name)
    if key in _NEIGHBOUR_CACHE:
        return _NEIGHBOUR_CACHE[key]
    codes = list(conn.execute(text(f"SELECT code FROM {level.name} WHERE valid_to IS NULL ORDER BY code")).scalars())
    rows = conn.execute(text(f"""
        SELECT a.code, b.code
        FROM {level.name} a JOIN {level.name} b
          ON b.valid_to IS NULL AND a.code < b.code AND ST_DWithin(a.geom, b.geom, :tolerance)
        WHERE a.valid_to IS NULL
    """), {"tolerance": NEIGHBOUR_TOLERANCE_DEG}).all()
    position = {code: i for i, code in enumerate(codes)}
    pairs = np.array([(position[a], position[b]) for a, b in rows], dtype=np.int64).reshape(-1, 2)
    if len(_NEIGHBOUR_CACHE) > 32:
        _NEIGHBOUR_CACHE.clear()
    _NEIGHBOUR_CACHE[key] = (codes, pairs)
    return codes, pairs


def neighbour_matrix(n: int, pairs: np.ndarray) -> sparse.csr_matrix:
    """Symmetric binary contiguity matrix without the diagonal."""
    from scipy import sparse

    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


# --- the statistic --------------------------------------------------------------------------------------------

def gi_star(values: np.ndarray, neighbours: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Getis-Ord Gi* z-scores and two-sided p-values (normal approximation) with binary weights that include
    the area itself. Row scaling of the weights does not change Gi*'s z-score."""
    from scipy import sparse, special

    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 3:
        raise InvalidInput("Gi* needs at least three areas")
    weights = neighbours + sparse.identity(n, format="csr")
    total_weight = np.asarray(weights.sum(axis=1)).ravel()  # binary, so also the sum of squared weights
    mean = x.mean()
    spread = np.sqrt(max((x * x).mean() - mean * mean, 0.0))
    if spread == 0:
        return np.zeros(n), np.ones(n)
    local_sum = weights @ x
    denominator = spread * np.sqrt((n * total_weight - total_weight**2) / (n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(denominator > 0, (local_sum - mean * total_weight) / denominator, 0.0)
    p = 2.0 * special.ndtr(-np.abs(z))
    return z, p


def gi_star_permutation_p(
    values: np.ndarray, neighbours: sparse.csr_matrix, permutations: int = 999, seed: int = 0, chunk: int = 4096
) -> np.ndarray:
    """Pseudo p-values of Gi* by conditional permutation: each area keeps its own value and draws as many
    neighbours as it has from the other areas, `permutations` times (one-sided, folded, as in esda).

    Each permutation draws k_max + 1 distinct areas once for all areas; area i takes the first k_i of them,
    skipping itself when drawn (then the next one steps in). That is a uniform draw from the others, and it turns
    the simulation into prefix sums and gathers: O(permutations × areas)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    cardinality = np.diff(neighbours.indptr)
    k_max = int(cardinality.max(initial=0))
    observed = x + neighbours @ x
    if k_max == 0:
        return np.ones(n)
    rng = np.random.default_rng(seed)
    draws = _subsets(rng, n, min(k_max + 1, n), permutations)
    if draws.shape[1] <= k_max:  # every other area is a neighbour: append a dummy that is never reached
        draws = np.hstack([draws, draws[:, :1]])
    drawn = x[draws]
    prefix = np.zeros((permutations, draws.shape[1] + 1))
    np.cumsum(drawn, axis=1, out=prefix[:, 1:])
    where_drawn = np.full((permutations, n), np.iinfo(np.int32).max, dtype=np.int32)
    np.put_along_axis(where_drawn, draws, np.broadcast_to(np.arange(draws.shape[1], dtype=np.int32),
                                                          draws.shape), axis=1)
    p = np.empty(n)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        k, own = cardinality[start:stop], x[start:stop]
        self_drawn = where_drawn[:, start:stop] < k
        simulated = own + prefix[:, k] + self_drawn * (drawn[:, k] - own)
        larger = (simulated >= observed[start:stop]).sum(axis=0)
        larger = np.where(permutations - larger < larger, permutations - larger, larger)
        p[start:stop] = (larger + 1.0) / (permutations + 1.0)
    p[cardinality == 0] = 1.0  # an area without neighbours has nothing to compare: no evidence either way
    return p


def _subsets(rng: np.random.Generator, population: int, size: int, count: int) -> np.ndarray:
    """`count` random subsets of `size` distinct integers below `population`, each in random order (Floyd's
    algorithm, vectorised over the subsets: cost independent of the population)."""
    chosen = np.empty((count, size), dtype=np.int64)
    for step, top in enumerate(range(population - size, population)):
        candidate = rng.integers(0, top + 1, size=count)
        taken = (chosen[:, :step] == candidate[:, None]).any(axis=1)
        chosen[:, step] = np.where(taken, top, candidate)
    return rng.permuted(chosen, axis=1)


def fdr_bins(z: np.ndarray, p: np.ndarray, two_sided_p: bool = True) -> np.ndarray:
    """Confidence bins -3..3 with the Benjamini-Hochberg false discovery rate correction at 90/95/99 %."""
    n = len(p)
    bins = np.zeros(n, dtype=int)
    if n == 0:
        return bins
    ordered = np.sort(p)
    ranks = np.arange(1, n + 1)
    for alpha, level in CONFIDENCE_LEVELS:
        # One-sided pseudo p-values are compared with half the level, as a two-sided test would be.
        limit = alpha if two_sided_p else alpha / 2
        passing = np.nonzero(ordered <= ranks / n * limit)[0]
        if len(passing) == 0:
            continue
        cutoff = ordered[passing[-1]]
        bins = np.where(p <= cutoff, np.sign(z).astype(int) * level, bins)
    return bins


BIN_LABELS = {3: "hot spot 99%", 2: "hot spot 95%", 1: "hot spot 90%", 0: "not significant",
              -1: "cold spot 90%", -2: "cold spot 95%", -3: "cold spot 99%"}


@dataclass
class HotspotInputs:
    """What PostGIS aggregated for Gi*: codes, names, parents, counts and households of every current area."""

    codes: list[str]
    rows: list[dict]
    pairs: np.ndarray
    seconds: float


def hotspot_inputs(conn: Connection, level_name: str, period: Period, categories: list[str] | None) -> HotspotInputs:
    """The units of `level_name` with their complaint counts in `period` (of `categories`, all when None),
    households and neighbour pairs: what the Gi* statistic is computed over."""
    level = get_level(level_name, HOTSPOT_LEVELS)
    started = time.perf_counter()
    where, params = _complaint_filter(period, categories)
    rows = [dict(r) for r in conn.execute(text(_counts_sql(level, where, "")), params).mappings()]
    codes, pairs = neighbour_pairs(conn, level_name)
    if [r["code"] for r in rows] != codes:
        raise InvalidInput(f"the {level.name} layer changed while it was read; try again")
    return HotspotInputs(codes, rows, pairs, time.perf_counter() - started)


def hotspots(
    conn: Connection,
    level_name: str,
    period: Period,
    categories: list[str] | None = None,
    within: str | None = None,
    value: str = "count",
    permutations: int = 0,
    seed: int = 0,
    with_geometry: bool = False,
) -> Figure:
    """Gi* hot and cold spots of complaint counts (or rates per 1,000 households) over the whole city, with
    FDR-corrected confidence bins; `within` limits the rows returned, not the study area.

    With `permutations` > 0 the p-values come from conditional permutation; otherwise from the normal
    approximation (the z-score), as optimized hot spot analysis does for aggregated counts."""
    if value not in ("count", "rate"):
        raise InvalidInput("value must be count or rate")
    if isinstance(permutations, bool) or not isinstance(permutations, int) or not 0 <= permutations <= 9999:
        raise InvalidInput("permutations 必须是 0 到 9999 之间的整数")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidInput(f"seed（随机种子）必须是 0 到 {MAX_SEED} 之间的整数")
    categories = check_categories(conn, categories)
    inputs = hotspot_inputs(conn, level_name, period, categories)
    if permutations * len(inputs.codes) > MAX_PERMUTATION_CELLS:
        raise InvalidInput(f"permutations × 区域数（{permutations} × {len(inputs.codes)}）超过 "
                           f"{MAX_PERMUTATION_CELLS:,}；请减少 permutations（此层级最多 "
                           f"{MAX_PERMUTATION_CELLS // max(len(inputs.codes), 1)}）或选择更高的层级")
    started = time.perf_counter()
    complaints = np.array([r["complaints"] for r in inputs.rows], dtype=float)
    households = np.array([r["households"] for r in inputs.rows], dtype=float)
    rate = _rate(complaints, households)
    if value == "count":
        values, keep = complaints, np.ones(len(complaints), dtype=bool)
    else:
        keep = ~np.isnan(rate)  # areas where nobody lives have no rate and take no part
        values = rate[keep]
    matrix = neighbour_matrix(len(inputs.codes), inputs.pairs)[keep][:, keep]
    z, p = gi_star(values, matrix)
    if permutations:
        p = gi_star_permutation_p(values, matrix, permutations, seed)
    bins = fdr_bins(z, p, two_sided_p=not permutations)
    statistic_seconds = time.perf_counter() - started

    cardinality = np.diff(matrix.indptr)
    full = {name: np.full(len(inputs.codes), np.nan) for name in ("z", "p", "bin", "neighbours")}
    for name, array in (("z", z), ("p", p), ("bin", bins), ("neighbours", cardinality)):
        full[name][keep] = array
    rows = []
    for i, row in enumerate(inputs.rows):
        if within and not row["code"].startswith(within):
            continue
        has_value = bool(keep[i])
        rows.append({
            **row,
            "rate_per_1000": None if np.isnan(rate[i]) else round(float(rate[i]), 3),
            "neighbours": int(full["neighbours"][i]) if has_value else None,
            "gi_z": round(float(full["z"][i]), 6) if has_value else None,
            "p_value": float(full["p"][i]) if has_value else None,
            "confidence_bin": int(full["bin"][i]) if has_value else None,
            "result": BIN_LABELS[int(full["bin"][i])] if has_value else "no households",
        })
    meta = {
        "level": level_name, "period": period.label, "categories": categories or "all", "value": value,
        "within": within, "areas": int(keep.sum()), "city_complaints": int(complaints.sum()),
        "neighbour_pairs": int(len(inputs.pairs)),
        "p_values": f"conditional permutation ({permutations})" if permutations else "normal approximation",
        "correction": "Benjamini-Hochberg false discovery rate",
        "hot_spots": int((bins > 0).sum()), "cold_spots": int((bins < 0).sum()),
        "aggregation_seconds": round(inputs.seconds, 4), "statistic_seconds": round(statistic_seconds, 4),
    }
    figure = Figure(f"hotspots_{level_name}", ["code", "name", "parent_code", "households", "complaints",
                                               "rate_per_1000", "neighbours", "gi_z", "p_value", "confidence_bin",
                                               "result"], rows, meta)
    if with_geometry:
        figure.geometries = area_geometries(conn, level_name, [r["code"] for r in rows])
    return figure


def area_geometries(conn: Connection, level_name: str, codes: list[str]) -> list[str]:
    """GeoJSON geometry text of current areas, in the order of `codes`."""
    found = dict(conn.execute(text(
        f"SELECT code, ST_AsGeoJSON(geom, 7) FROM {level_name} WHERE valid_to IS NULL AND code = ANY(:codes)"
    ), {"codes": codes}).all())
    return [found.get(code) for code in codes]


# --- hexagons -------------------------------------------------------------------------------------------------

H3_RESOLUTIONS = range(5, 12)


def h3_bins(
    conn: Connection,
    period: Period,
    categories: list[str] | None = None,
    resolution: int = 9,
    within: str | None = None,
) -> Figure:
    """Complaint counts per H3 hexagon: a view of where complaints fall that does not depend on boundaries."""
    import h3.api.basic_int as h3

    if resolution not in H3_RESOLUTIONS:
        raise InvalidInput(f"H3 resolution must be between {H3_RESOLUTIONS.start} and {H3_RESOLUTIONS.stop - 1}")
    categories = check_categories(conn, categories)
    where, params = _complaint_filter(period, categories)
    if within:
        where += " AND c.micro_grid_code LIKE :within"
        params["within"] = within + "%"
    points = conn.execute(text(
        f"SELECT ST_Y(c.geom), ST_X(c.geom) FROM complaint c WHERE {where} AND c.geom IS NOT NULL "
        "AND NOT ST_IsEmpty(c.geom)"
    ), params).all()
    cells = np.fromiter((h3.latlng_to_cell(lat, lon, resolution) for lat, lon in points), dtype=np.uint64,
                        count=len(points))
    unique, counts = np.unique(cells, return_counts=True)
    rows, geometries = [], []
    for cell, count in zip(unique.tolist(), counts.tolist()):
        ring = [[round(lon, 7), round(lat, 7)] for lat, lon in h3.cell_to_boundary(cell)]
        ring.append(ring[0])
        lat, lon = h3.cell_to_latlng(cell)
        rows.append({"h3_cell": h3.int_to_str(cell), "resolution": resolution, "complaints": count,
                     "center_lon": round(lon, 7), "center_lat": round(lat, 7)})
        geometries.append('{"type":"Polygon","coordinates":[%s]}' % str(ring).replace(" ", ""))
    meta = {"period": period.label, "categories": categories or "all", "within": within, "resolution": resolution,
            "complaints_with_coordinates": len(points), "cells": len(rows)}
    return Figure(f"h3_r{resolution}", ["h3_cell", "resolution", "complaints", "center_lon", "center_lat"],
                  rows, meta, geometries)


# --- emerging hotspots ----------------------------------------------------------------------------------------

EMERGING_CLASSES = ("new hot spot", "intensifying hot spot", "persistent hot spot", "diminishing hot spot",
                    "rising", "falling", "no pattern")


def emerging_hotspots(
    conn: Connection,
    level_name: str,
    period: Period,
    baseline: Period | None = None,
    categories: list[str] | None = None,
    within: str | None = None,
    alpha: float = 0.05,
    with_geometry: bool = False,
) -> Figure:
    """This period against a baseline (by default the period just before): Gi* in both, and a test of whether an
    area's share of complaints rose more than the city's as a whole (exact binomial test on the two counts).

    Classes: new hot spot (hot now, not before), intensifying (hot in both, rising), persistent (hot in both),
    diminishing (hot before, not now), rising / falling (not hot, significant change), no pattern."""
    if not 0 < alpha < 0.5:
        raise InvalidInput("alpha must be between 0 and 0.5")
    from scipy import stats

    baseline = baseline or period.previous()
    now = hotspots(conn, level_name, period, categories, within, with_geometry=with_geometry)
    before = hotspots(conn, level_name, baseline, categories, within)
    before_by_code = {row["code"]: row for row in before.rows}
    # City-wide totals of the level (not only the rows listed) set the expected share of "now".
    total_now, total_before = now.meta["city_complaints"], before.meta["city_complaints"]
    expected_share = total_now / (total_now + total_before) if total_now + total_before else 0.5
    rows = []
    for row in now.rows:
        previous = before_by_code[row["code"]]
        count_now, count_before = row["complaints"], previous["complaints"]
        trials = count_now + count_before
        p_rise = float(stats.binom.sf(count_now - 1, trials, expected_share)) if trials else 1.0
        p_fall = float(stats.binom.cdf(count_now, trials, expected_share)) if trials else 1.0
        hot_now, hot_before = (row["confidence_bin"] or 0) > 0, (previous["confidence_bin"] or 0) > 0
        rising, falling = p_rise < alpha, p_fall < alpha
        if hot_now and not hot_before:
            kind = "new hot spot"
        elif hot_now and rising:
            kind = "intensifying hot spot"
        elif hot_now:
            kind = "persistent hot spot"
        elif hot_before:
            kind = "diminishing hot spot"
        elif rising:
            kind = "rising"
        elif falling:
            kind = "falling"
        else:
            kind = "no pattern"
        rows.append({
            "code": row["code"], "name": row["name"], "parent_code": row["parent_code"],
            "complaints": count_now, "baseline_complaints": count_before, "change": count_now - count_before,
            "gi_z": row["gi_z"], "baseline_gi_z": previous["gi_z"],
            "confidence_bin": row["confidence_bin"], "baseline_confidence_bin": previous["confidence_bin"],
            "p_rise": round(p_rise, 6), "p_fall": round(p_fall, 6), "pattern": kind,
        })
    meta = {"level": level_name, "period": period.label, "baseline": baseline.label,
            "categories": categories or "all", "within": within, "alpha": alpha,
            "city_complaints": total_now, "city_baseline_complaints": total_before,
            "expected_share_now": round(expected_share, 6),
            "patterns": {kind: sum(r["pattern"] == kind for r in rows) for kind in EMERGING_CLASSES}}
    return Figure(f"emerging_{level_name}", ["code", "name", "parent_code", "complaints", "baseline_complaints",
                                             "change", "gi_z", "baseline_gi_z", "confidence_bin",
                                             "baseline_confidence_bin", "p_rise", "p_fall", "pattern"],
                  rows, meta, now.geometries)
