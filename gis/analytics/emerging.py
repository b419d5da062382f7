"""Emerging hot spot analysis over a space-time cube: areas (micro-grids or grids) × categories × months.

Every bin (area × month) of a category gets Getis-Ord Gi* (the one Gi* of `gis.analytics.hotspots`, with its
false-discovery-rate bins) against the mean and spread of the category's whole cube, as Esri's space-time cube
does, with the area's neighbours of the same month (and of `GRIDGOV_PROACTIVE_TIME_WINDOW` months before); each
area's series of Gi* z-scores gets the Mann–Kendall trend test (significant below
`GRIDGOV_PROACTIVE_TREND_ALPHA`), and every area × category is put in one of the space-time classes of Esri's
Emerging Hot Spot Analysis, with the rules as Esri documents them (n time steps, the last one the final step;
"90 %" is at least 0.9 × n of the steps):

- new: hot at the final step and never hot before;
- consecutive: a single run of at least two hot steps ending at the final step, never hot before that run, and
  fewer than 90 % of the steps hot;
- intensifying: hot in at least 90 % of the steps including the final one, and the Gi* z-scores rise
  significantly (Mann–Kendall);
- persistent: hot in at least 90 % of the steps (the final one included) with no significant trend;
- diminishing: hot in at least 90 % of the steps including the final one, the z-scores falling significantly;
- sporadic: hot at the final step, on and off before, fewer than 90 % of the steps hot and none cold;
- oscillating: hot at the final step, cold at some earlier step, fewer than 90 % of the steps hot;
- historical: not hot at the final step, but hot in at least 90 % of the steps;

and the same eight for cold spots with hot and cold exchanged. Anything else is "no pattern".

The counts are one SQL aggregate (months in Beijing time); the statistics are numpy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy import Connection, text

from gis.analytics import hotspots as hs
from gis.analytics.figures import Figure
from gis.analytics.periods import parse_period
from gis.errors import InvalidInput
from gis.settings import proactive_settings
from gis.times import window as plausible_window

HOT_CLASSES = ("new", "consecutive", "intensifying", "persistent", "diminishing", "sporadic", "oscillating",
               "historical")
"""Esri's eight space-time classes, in its order."""
CLASSES = tuple(f"{kind} hot spot" for kind in HOT_CLASSES) + tuple(f"{kind} cold spot" for kind in HOT_CLASSES) \
    + ("no pattern",)
CLASSES_ZH = {
    "new hot spot": "新热点", "consecutive hot spot": "连续热点", "intensifying hot spot": "加剧热点",
    "persistent hot spot": "持续热点", "diminishing hot spot": "减弱热点", "sporadic hot spot": "偶发热点",
    "oscillating hot spot": "振荡热点", "historical hot spot": "历史热点",
    "new cold spot": "新冷点", "consecutive cold spot": "连续冷点", "intensifying cold spot": "加剧冷点",
    "persistent cold spot": "持续冷点", "diminishing cold spot": "减弱冷点", "sporadic cold spot": "偶发冷点",
    "oscillating cold spot": "振荡冷点", "historical cold spot": "历史冷点", "no pattern": "无模式",
}
MOST_SHARE = 0.9
"""Esri's "90 percent of the time-step intervals" (part of the classes' definition, not a setting)."""
MIN_STEPS = 3
MAX_STEPS = 60
"""The months a cube may have. The default months, the trend's significance and the time window are settings
(gis.settings.ProactiveSettings: GRIDGOV_PROACTIVE_STEPS, _TREND_ALPHA, _TIME_WINDOW)."""
MK_CHUNK_CELLS = 4_000_000
"""Pairwise cells the Mann–Kendall test holds at once (rows × steps²), a few tens of megabytes."""


def default_steps(steps: int | None) -> int:
    """The months asked for, or GRIDGOV_PROACTIVE_STEPS when none were."""
    return proactive_settings().steps if steps is None else steps


# --- Mann–Kendall ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Trend:
    """Mann–Kendall trend test of each row of a series matrix: S, its variance (ties corrected), the z-score
    (continuity corrected), the two-sided p-value and Kendall's tau-a (S over the number of pairs)."""

    s: np.ndarray
    variance: np.ndarray
    z: np.ndarray
    p: np.ndarray
    tau: np.ndarray


def mann_kendall(series: np.ndarray) -> Trend:
    """The Mann–Kendall trend test of every row of `series` (rows: locations, columns: time steps in order).

    S = Σ_{i<j} sign(x_j − x_i); Var(S) = [n(n−1)(2n+5) − Σ_ties t(t−1)(2t+5)] / 18; z = (S − sign S) / √Var;
    p = 2 Φ(−|z|). Rows without variance (all values tied) have z = 0 and p = 1."""
    from scipy import special

    x = np.atleast_2d(np.asarray(series, dtype=float))
    rows, n = x.shape
    if n < 2:
        raise InvalidInput("Mann–Kendall 趋势检验至少需要两个时间步")
    upper_i, upper_j = np.triu_indices(n, k=1)
    s, ties = np.empty(rows), np.empty(rows)
    chunk = max(1, MK_CHUNK_CELLS // (n * n))  # bounds the memory of the pairwise arrays
    for start in range(0, rows, chunk):
        part = x[start:start + chunk]
        s[start:start + chunk] = np.sign(part[:, upper_j] - part[:, upper_i]).sum(axis=1)
        # Σ over tie groups of t(t−1)(2t+5) equals Σ over elements of (t_e − 1)(2 t_e + 5), t_e the size of
        # the element's own group.
        group_size = (part[:, :, None] == part[:, None, :]).sum(axis=2)
        ties[start:start + chunk] = ((group_size - 1) * (2 * group_size + 5)).sum(axis=1)
    variance = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 0, (s - np.sign(s)) / np.sqrt(np.maximum(variance, 1e-300)), 0.0)
    p = 2.0 * special.ndtr(-np.abs(z))
    return Trend(s, variance, z, p, s / (n * (n - 1) / 2.0))


# --- the classes ----------------------------------------------------------------------------------------------

def _side(significant: np.ndarray, opposite: np.ndarray, trend_z: np.ndarray, trend_p: np.ndarray, rising: int,
          trend_alpha: float) -> np.ndarray:
    """Class index into HOT_CLASSES (or −1) of every row for one side (hot or cold). `significant` are the
    side's significant steps, `opposite` the other side's; `rising` is +1 for hot spots, −1 for cold spots (a
    cold spot intensifies as its z-scores fall)."""
    rows, n = significant.shape
    count = significant.sum(axis=1)
    final = significant[:, -1]
    most = count >= MOST_SHARE * n
    # Length of the run of significant steps that ends at the final step.
    run = np.zeros(rows, dtype=int)
    still = np.ones(rows, dtype=bool)
    for step in range(n - 1, -1, -1):
        still &= significant[:, step]
        run += still
    trend_sig = trend_p < trend_alpha
    up = trend_sig & (np.sign(trend_z) == rising)
    down = trend_sig & (np.sign(trend_z) == -rising)
    opposite_before = opposite[:, :-1].any(axis=1)
    kind = np.full(rows, -1)
    rules = [  # first match wins; each rule as Esri states it
        (final & (count == 1), "new"),
        (final & most & up, "intensifying"),
        (final & most & down, "diminishing"),
        (final & most, "persistent"),
        (final & (run >= 2) & (count == run) & ~most, "consecutive"),
        (final & ~most & opposite_before, "oscillating"),
        (final & ~most & ~opposite[:, :-1].any(axis=1) & (count > run), "sporadic"),
        (~final & most, "historical"),
    ]
    for condition, name in reversed(rules):
        kind = np.where(condition, HOT_CLASSES.index(name), kind)
    return kind


def classify(bins: np.ndarray, z: np.ndarray, trend_alpha: float | None = None) -> tuple[list[str], Trend]:
    """The space-time class of each row (location) from its per-step confidence bins (−3..3, 0 not significant)
    and Gi* z-scores, with the Mann–Kendall trend of the z-scores (significant below `trend_alpha`, default
    GRIDGOV_PROACTIVE_TREND_ALPHA). A location hot at the final step takes a hot class, one cold at the final step
    a cold class; historical ones are classed by the side they mostly were."""
    trend_alpha = proactive_settings().trend_alpha if trend_alpha is None else trend_alpha
    bins = np.atleast_2d(bins)
    hot, cold = bins > 0, bins < 0
    trend = mann_kendall(z)
    hot_kind = _side(hot, cold, trend.z, trend.p, +1, trend_alpha)
    cold_kind = _side(cold, hot, trend.z, trend.p, -1, trend_alpha)
    names = []
    for h, c in zip(hot_kind.tolist(), cold_kind.tolist()):
        if h >= 0:
            names.append(f"{HOT_CLASSES[h]} hot spot")
        elif c >= 0:
            names.append(f"{HOT_CLASSES[c]} cold spot")
        else:
            names.append("no pattern")
    return names, trend


# --- the cube -------------------------------------------------------------------------------------------------

def month_steps(last_month: str | None, steps: int) -> list[date]:
    """First days of the `steps` months ending with `last_month` (YYYY-MM), oldest first."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not MIN_STEPS <= steps <= MAX_STEPS:
        raise InvalidInput(f"months（时间步数）必须是 {MIN_STEPS} 到 {MAX_STEPS} 之间的整数")
    period = parse_period(last_month or "")
    if period.kind != "month":
        raise InvalidInput(f"month 须写作 YYYY-MM，{last_month!r} 不是")
    index = period.start.year * 12 + period.start.month - 1
    return [date((index - k) // 12, (index - k) % 12 + 1, 1) for k in range(steps - 1, -1, -1)]


@dataclass
class Cube:
    """Complaint counts per area × category × month, and what the statistic needs: the neighbour matrix."""

    level: str
    codes: list[str]
    names: list[str]
    parents: list[str]
    categories: list[str]
    months: list[date]
    counts: np.ndarray  # (areas, categories, months)
    pairs: np.ndarray
    seconds: float


def latest_month(conn: Connection) -> str:
    """The newest month (YYYY-MM, Beijing time) with a complaint at a plausible time (gis/times.py); InvalidInput
    when there is none."""
    return _month_of(conn, "max")


def first_month(conn: Connection) -> str:
    """The oldest month (YYYY-MM, Beijing time) with a complaint at a plausible time."""
    return _month_of(conn, "min")


def _month_of(conn: Connection, aggregate: str) -> str:
    earliest, latest = plausible_window()
    found = conn.execute(text(
        f"SELECT to_char({aggregate}(reported_at) AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') FROM complaint "
        "WHERE reported_at >= :earliest AND reported_at <= :latest"), {"earliest": earliest, "latest": latest}).scalar()
    if found is None:
        raise InvalidInput("还没有任何投诉记录，无法分析")
    return found


def build_cube(conn: Connection, level_name: str, months: list[date], categories: list[str] | None = None) -> Cube:
    """Counts of complaints per current area of `level_name` × category × month (Beijing time), one aggregate."""
    level = hs.get_level(level_name, hs.HOTSPOT_LEVELS)
    started = time.perf_counter()
    categories = hs.check_categories(conn, categories)
    if categories is None:
        categories = list(conn.execute(text("SELECT code FROM category ORDER BY code")).scalars())
    areas = conn.execute(text(
        f"SELECT code, name, {level.parent_column} FROM {level.name} WHERE valid_to IS NULL ORDER BY code")).all()
    codes, pairs = hs.neighbour_pairs(conn, level_name)
    if [a[0] for a in areas] != codes:
        raise InvalidInput(f"the {level.name} layer changed while it was read; try again")
    start, end = months[0], months[-1]
    end_next = date(end.year + end.month // 12, end.month % 12 + 1, 1)
    rows = conn.execute(text(f"""
        SELECT c.{level.complaint_column} AS code, c.category_code,
               date_trunc('month', c.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS month, count(*) AS n
        FROM complaint c
        WHERE c.reported_at >= (CAST(:start AS timestamp) AT TIME ZONE 'Asia/Shanghai')
          AND c.reported_at < (CAST(:end AS timestamp) AT TIME ZONE 'Asia/Shanghai')
          AND c.{level.complaint_column} IS NOT NULL AND c.category_code = ANY(:categories)
        GROUP BY 1, 2, 3
    """), {"start": start, "end": end_next, "categories": categories}).all()
    area_index = {code: i for i, code in enumerate(codes)}
    category_index = {code: i for i, code in enumerate(categories)}
    month_index = {month: i for i, month in enumerate(months)}
    counts = np.zeros((len(codes), len(categories), len(months)))
    for code, category, month, n in rows:
        if code in area_index:  # complaints on a retired area are not on the current map
            counts[area_index[code], category_index[category], month_index[month]] = n
    return Cube(level.name, codes, [a[1] for a in areas], [a[2] for a in areas], categories, months, counts,
                pairs, time.perf_counter() - started)


@dataclass
class SpaceTime:
    """Gi* z-scores and FDR bins of every area × category × month of a cube."""

    z: np.ndarray
    bins: np.ndarray


def space_time_neighbours(n: int, steps: int, pairs: np.ndarray, time_window: int):
    """The neighbour matrix of the bins of a cube flattened time-major (bin t·n + i is area i at step t): the
    area's spatial neighbours at the same step, and the area with its neighbours at each of the `time_window`
    steps before (Esri's neighbourhood time step; only earlier steps, so a bin never sees the future)."""
    from scipy import sparse

    spatial = hs.neighbour_matrix(n, pairs)
    matrix = sparse.kron(sparse.identity(steps), spatial, format="csr")
    around = spatial + sparse.identity(n, format="csr")
    for lag in range(1, time_window + 1):
        matrix = matrix + sparse.kron(sparse.eye(steps, k=-lag), around, format="csr")
    return matrix.tocsr()


def space_time_gi(cube: Cube, time_window: int | None = None) -> SpaceTime:
    """Gi* of every bin (area × month) of each category, over all the category's bins of the cube at once (the
    cube's mean and spread, as Esri's space-time cube does), with spatial neighbours at the same month and
    `time_window` months before (default GRIDGOV_PROACTIVE_TIME_WINDOW); FDR bins over the category's bins
    (hotspots.gi_star and fdr_bins)."""
    time_window = proactive_settings().time_window if time_window is None else time_window
    if isinstance(time_window, bool) or not isinstance(time_window, int) or not 0 <= time_window < len(cube.months):
        raise InvalidInput("time_window（时间邻域）必须是 0 到时间步数减一之间的整数")
    areas, categories, steps = cube.counts.shape
    matrix = space_time_neighbours(areas, steps, cube.pairs, time_window)
    z = np.zeros(cube.counts.shape)
    bins = np.zeros(cube.counts.shape, dtype=int)
    for k in range(categories):
        values = cube.counts[:, k, :].T.ravel()  # time-major
        if not values.any():
            continue
        flat_z, flat_p = hs.gi_star(values, matrix)
        z[:, k, :] = flat_z.reshape(steps, areas).T
        bins[:, k, :] = hs.fdr_bins(flat_z, flat_p).reshape(steps, areas).T
    return SpaceTime(z, bins)


@dataclass
class Emerging:
    """The classes of every area × category over the steps of a cube (arrays indexed [area, category])."""

    cube: Cube
    spacetime: SpaceTime
    classes: np.ndarray  # of str
    trend: Trend
    steps: int


def window(cube: Cube, last: int, steps: int) -> Cube:
    """The cube of the `steps` months ending at month index `last` (fewer at the start): what a run at the
    close of that month would have seen."""
    first = max(0, last + 1 - steps)
    return Cube(cube.level, cube.codes, cube.names, cube.parents, cube.categories, cube.months[first:last + 1],
                cube.counts[:, :, first:last + 1], cube.pairs, cube.seconds)


def classify_cube(cube: Cube, spacetime: SpaceTime, last: int | None = None, steps: int | None = None,
                  trend_alpha: float | None = None) -> Emerging:
    """Classes over the `steps` months ending at month index `last` (default: the whole cube)."""
    last = cube.counts.shape[2] - 1 if last is None else last
    steps = last + 1 if steps is None else min(steps, last + 1)
    window = slice(last + 1 - steps, last + 1)
    areas, categories = cube.counts.shape[:2]
    z = spacetime.z[:, :, window].reshape(areas * categories, steps)
    bins = spacetime.bins[:, :, window].reshape(areas * categories, steps)
    names, trend = classify(bins, z, trend_alpha)
    return Emerging(cube, spacetime, np.array(names, dtype=object).reshape(areas, categories), trend, steps)


def analyse(conn: Connection, level_name: str = "micro_grid", month: str | None = None,
            steps: int | None = None, categories: list[str] | None = None) -> Emerging:
    """The emerging hot spot classes of every area × category over the `steps` months (default
    GRIDGOV_PROACTIVE_STEPS) ending with `month` (default: the newest month with complaints)."""
    months = month_steps(month or latest_month(conn), default_steps(steps))
    cube = build_cube(conn, level_name, months, categories)
    return classify_cube(cube, space_time_gi(cube))


def category_names(conn: Connection) -> dict[str, str]:
    """Chinese names of the categories by code."""
    return dict(conn.execute(text("SELECT code, name_zh FROM category")).all())


COLUMNS = ["code", "name", "parent_code", "category_code", "category_name", "pattern", "pattern_zh",
           "hot_steps", "cold_steps", "final_bin", "final_gi_z", "trend_z", "trend_p", "trend_tau",
           "complaints", "final_complaints"]
LABELS = {"code": "区域编码", "name": "区域", "parent_code": "上级编码", "category_code": "类别编码",
          "category_name": "类别", "pattern": "pattern", "pattern_zh": "时空模式", "hot_steps": "热点月数",
          "cold_steps": "冷点月数", "final_bin": "末月置信等级", "final_gi_z": "末月 Gi* z 值",
          "trend_z": "趋势 z 值", "trend_p": "趋势 p 值", "trend_tau": "Kendall τ", "complaints": "期间投诉数",
          "final_complaints": "末月投诉数"}


def emerging_figure(conn: Connection, level_name: str = "micro_grid", month: str | None = None,
                    steps: int | None = None, categories: list[str] | None = None, within: str | None = None,
                    include_no_pattern: bool = False) -> Figure:
    """The space-time classes as a figure: one row per area × category with a pattern (all rows on request),
    with the steps it was hot and cold, the final step's Gi*, the trend and the counts."""
    started = time.perf_counter()
    result = analyse(conn, level_name, month, steps, categories)
    cube, st = result.cube, result.spacetime
    names = category_names(conn)
    rows = []
    flat = 0
    for i, code in enumerate(cube.codes):
        for k, category in enumerate(cube.categories):
            index, flat = flat, flat + 1
            pattern = result.classes[i, k]
            if within and not code.startswith(within):
                continue
            if pattern == "no pattern" and not include_no_pattern:
                continue
            rows.append({
                "code": code, "name": cube.names[i], "parent_code": cube.parents[i], "category_code": category,
                "category_name": names.get(category), "pattern": pattern, "pattern_zh": CLASSES_ZH[pattern],
                "hot_steps": int((st.bins[i, k] > 0).sum()), "cold_steps": int((st.bins[i, k] < 0).sum()),
                "final_bin": int(st.bins[i, k, -1]), "final_gi_z": round(float(st.z[i, k, -1]), 4),
                "trend_z": round(float(result.trend.z[index]), 4), "trend_p": round(float(result.trend.p[index]), 6),
                "trend_tau": round(float(result.trend.tau[index]), 4),
                "complaints": int(cube.counts[i, k].sum()), "final_complaints": int(cube.counts[i, k, -1]),
            })
    every = result.classes.ravel().tolist()
    meta = {"level": cube.level, "months": [m.strftime("%Y-%m") for m in cube.months], "steps": len(cube.months),
            "categories": len(cube.categories), "areas": len(cube.codes), "within": within,
            "trend_test": f"Mann–Kendall, alpha {proactive_settings().trend_alpha}", "most_share": MOST_SHARE,
            "gi_star": "per month, binary queen contiguity including the area, Benjamini-Hochberg FDR bins",
            "patterns": {kind: every.count(kind) for kind in CLASSES},
            "aggregation_seconds": round(cube.seconds, 4),
            "seconds": round(time.perf_counter() - started, 4)}
    return Figure(f"emerging_cube_{cube.level}", COLUMNS, rows, meta, labels=LABELS)
