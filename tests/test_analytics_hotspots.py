"""Hotspot figures recomputed by independent routes: geopandas spatial joins over the exported layers, esda's
Gi*, scipy's FDR control, the h3 library on the raw points."""

from __future__ import annotations

import io
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from scipy import stats
from sqlalchemy import create_engine

from gis.db.engine import with_driver

PERIOD = "2026H1"


@pytest.fixture(scope="module")
def engine(city_db):
    engine = create_engine(with_driver(city_db, "psycopg"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def points(engine) -> gpd.GeoDataFrame:
    """The complaints as raw points (no codes), read straight from the table."""
    with engine.connect() as conn:
        return gpd.read_postgis(
            "SELECT id, category_code, reported_at, geom FROM complaint WHERE geom IS NOT NULL", conn, geom_col="geom"
        )


def layer(http, name: str) -> gpd.GeoDataFrame:
    response = http.get(f"/layers/{name}.geojson", params={"limit": 50_000})
    assert response.status_code == 200
    return gpd.read_file(io.BytesIO(response.content))


def in_period(points: gpd.GeoDataFrame, start: str, end: str) -> gpd.GeoDataFrame:
    local = points["reported_at"].dt.tz_convert("Asia/Shanghai")
    return points[(local >= pd.Timestamp(start, tz="Asia/Shanghai")) & (local < pd.Timestamp(end, tz="Asia/Shanghai"))]


def counts_by_join(points: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> pd.Series:
    joined = gpd.sjoin(points[["geom"]].set_geometry("geom").set_crs(4326, allow_override=True),
                       areas[["code", "geometry"]], predicate="within")
    return joined.groupby("code").size().reindex(areas["code"], fill_value=0)


def figure(http, path: str, **params) -> dict:
    response = http.get(f"/analytics/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("level", ["micro_grid", "grid"])
def test_counts_and_rates_match_a_spatial_join(http, points, level):
    areas = layer(http, level)
    expected = counts_by_join(in_period(points, "2026-01-01", "2026-07-01"), areas)
    body = figure(http, "complaints", level=level, period=PERIOD)
    got = pd.DataFrame(body["rows"]).set_index("code")
    assert body["meta"]["total"] > 500
    assert got["complaints"].to_dict() == expected.to_dict()
    households = areas.set_index("code")["households"]
    rate = (expected * 1000 / households.where(households > 0)).round(3)
    np.testing.assert_allclose(got["rate_per_1000"].astype(float), rate.reindex(got.index).astype(float),
                               equal_nan=True)


def test_community_and_street_totals_add_up_from_the_grid_layer(http, points):
    grids = layer(http, "grid")
    communities = layer(http, "community")
    grid_counts = counts_by_join(in_period(points, "2026-01-01", "2026-07-01"), grids)
    grids["complaints"] = grids["code"].map(grid_counts)
    per_community = grids.groupby("community_code")[["complaints", "households"]].sum()
    body = figure(http, "complaints", level="community", period=PERIOD)
    got = pd.DataFrame(body["rows"]).set_index("code")
    assert got["complaints"].to_dict() == per_community["complaints"].to_dict()
    assert got["households"].to_dict() == per_community["households"].to_dict()
    per_street = per_community.join(communities.set_index("code")["street_code"]).groupby("street_code").sum()
    streets = pd.DataFrame(figure(http, "complaints", level="street", period=PERIOD)["rows"]).set_index("code")
    assert streets["complaints"].to_dict() == per_street["complaints"].to_dict()
    np.testing.assert_allclose(streets["rate_per_1000"],
                               (per_street["complaints"] * 1000 / per_street["households"]).round(3))


def test_category_filter_and_within(http, points):
    categories = ["E0601", "E0609"]
    grids = layer(http, "grid")
    chosen = in_period(points, "2026-01-01", "2026-07-01")
    chosen = chosen[chosen["category_code"].isin(categories)]
    expected = counts_by_join(chosen, grids)
    street = grids["code"].iloc[0][:9]
    body = figure(http, "complaints", level="grid", period=PERIOD, categories=",".join(categories), within=street)
    got = pd.DataFrame(body["rows"]).set_index("code")["complaints"]
    assert set(got.index) == {c for c in grids["code"] if c.startswith(street)}
    assert got.to_dict() == expected[got.index].to_dict()


def _esda_weights(areas: gpd.GeoDataFrame):
    from libpysal.weights import fuzzy_contiguity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Shapes within about 0.1 m of each other are neighbours, as in gridgov (digitising gaps).
        return fuzzy_contiguity(areas, tolerance=0, buffering=True, buffer=5e-7)


def _fdr_bins(z: np.ndarray, p: np.ndarray) -> np.ndarray:
    adjusted = stats.false_discovery_control(p, method="bh")
    bins = np.zeros(len(p), dtype=int)
    for alpha, level in ((0.10, 1), (0.05, 2), (0.01, 3)):
        bins = np.where(adjusted <= alpha, np.sign(z).astype(int) * level, bins)
    return bins


@pytest.mark.parametrize("level", ["micro_grid", "grid"])
def test_gi_star_matches_esda_and_fdr_matches_scipy(http, level):
    from esda import G_Local

    areas = layer(http, level).sort_values("code").reset_index(drop=True)
    body = figure(http, "hotspots", level=level, period=PERIOD)
    got = pd.DataFrame(body["rows"]).set_index("code").loc[areas["code"]]
    weights = _esda_weights(areas)
    assert body["meta"]["neighbour_pairs"] == weights.s0 / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = G_Local(got["complaints"].to_numpy(float), weights, transform="B", star=True, permutations=0)
    np.testing.assert_allclose(got["gi_z"], reference.Zs, atol=1e-5)
    p = 2 * stats.norm.sf(np.abs(reference.Zs))
    np.testing.assert_allclose(got["p_value"], p, rtol=1e-6, atol=1e-12)
    assert (got["confidence_bin"].to_numpy() == _fdr_bins(reference.Zs, p)).all()
    assert body["meta"]["hot_spots"] == int((got["confidence_bin"] > 0).sum())


def test_permutation_p_values_agree_with_esda(http):
    from esda import G_Local

    areas = layer(http, "micro_grid").sort_values("code").reset_index(drop=True)
    got = pd.DataFrame(figure(http, "hotspots", level="micro_grid", period=PERIOD, permutations=999,
                              seed=3)["rows"]).set_index("code").loc[areas["code"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = G_Local(got["complaints"].to_numpy(float), _esda_weights(areas), transform="B", star=True,
                            permutations=999, seed=11)
    difference = np.abs(got["p_value"].to_numpy() - reference.p_sim)
    assert np.median(difference) < 0.02  # two independent Monte Carlo runs of 999 draws
    assert np.corrcoef(got["p_value"], reference.p_sim)[0, 1] > 0.95


def test_rate_hotspots_leave_out_areas_without_households(http):
    areas = layer(http, "micro_grid")
    empty = set(areas.loc[areas["households"] == 0, "code"])
    body = figure(http, "hotspots", level="micro_grid", period=PERIOD, value="rate")
    rows = pd.DataFrame(body["rows"]).set_index("code")
    assert body["meta"]["areas"] == len(areas) - len(empty)
    assert rows.loc[list(empty), "gi_z"].isna().all()
    assert (rows.loc[list(empty), "result"] == "no households").all()
    # The demo city has persistent hotspots in its residential micro-grids: the rates must find some.
    assert body["meta"]["hot_spots"] > 0
    assert rows.loc[rows["confidence_bin"] > 0, "gi_z"].min() > 0
    assert rows.loc[rows["confidence_bin"] > 0, "result"].str.startswith("hot spot").all()


def test_h3_bins_match_the_h3_library(http, points):
    import h3

    chosen = in_period(points, "2026-01-01", "2026-07-01")
    expected = pd.Series([h3.latlng_to_cell(p.y, p.x, 9) for p in chosen.geometry]).value_counts()
    body = figure(http, "hexagons", period=PERIOD, resolution=9)
    got = pd.DataFrame(body["rows"]).set_index("h3_cell")["complaints"]
    assert got.to_dict() == expected.to_dict()
    hexes = gpd.read_file(io.BytesIO(http.get("/analytics/hexagons", params={"period": PERIOD,
                                                                            "format": "geojson"}).content))
    assert len(hexes) == len(got)
    cell = hexes.iloc[0]
    assert hexes.geometry.iloc[0].contains(gpd.points_from_xy([cell["center_lon"]], [cell["center_lat"]])[0])


def test_emerging_hotspots_recomputed(http):
    now = pd.DataFrame(figure(http, "hotspots", level="grid", period="2026Q2")["rows"]).set_index("code")
    before = pd.DataFrame(figure(http, "hotspots", level="grid", period="2026Q1")["rows"]).set_index("code")
    body = figure(http, "emerging", level="grid", period="2026Q2")
    assert body["meta"]["baseline"] == "2026Q1"
    got = pd.DataFrame(body["rows"]).set_index("code")
    share = now["complaints"].sum() / (now["complaints"].sum() + before["complaints"].sum())
    for code, row in got.iterrows():
        n_now, n_before = now.at[code, "complaints"], before.at[code, "complaints"]
        assert (row["complaints"], row["baseline_complaints"]) == (n_now, n_before)
        trials = n_now + n_before
        p_rise = stats.binomtest(n_now, trials, share, alternative="greater").pvalue if trials else 1.0
        assert row["p_rise"] == pytest.approx(p_rise, abs=2e-6)
        hot_now, hot_before = now.at[code, "confidence_bin"] > 0, before.at[code, "confidence_bin"] > 0
        if hot_now and not hot_before:
            assert row["pattern"] == "new hot spot"
        elif hot_now:
            assert row["pattern"] in ("intensifying hot spot", "persistent hot spot")
            assert (row["pattern"] == "intensifying hot spot") == (p_rise < 0.05)
        elif hot_before:
            assert row["pattern"] == "diminishing hot spot"
        else:
            assert row["pattern"] in ("rising", "falling", "no pattern")
            assert (row["pattern"] == "rising") == (p_rise < 0.05)


def test_exports_carry_the_same_figures(http):
    params = {"level": "grid", "period": PERIOD}
    rows = pd.DataFrame(figure(http, "hotspots", **params)["rows"])
    csv = http.get("/analytics/hotspots", params={**params, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    from_csv = pd.read_csv(io.BytesIO(csv.content), dtype={"code": str, "parent_code": str}, encoding="utf-8-sig")
    pd.testing.assert_frame_equal(from_csv[["code", "complaints", "confidence_bin"]],
                                  rows[["code", "complaints", "confidence_bin"]], check_dtype=False)
    xlsx = http.get("/analytics/hotspots", params={**params, "format": "xlsx"})
    from_xlsx = pd.read_excel(io.BytesIO(xlsx.content), dtype={"code": str})
    np.testing.assert_allclose(from_xlsx["gi_z"], rows["gi_z"])
    geojson = gpd.read_file(io.BytesIO(http.get("/analytics/hotspots", params={**params,
                                                                                "format": "geojson"}).content))
    assert list(geojson["code"]) == list(rows["code"])
    grids = layer(http, "grid").set_index("code")
    assert geojson.set_index("code").geometry.geom_equals_exact(grids.geometry.loc[geojson["code"]], 1e-6).all()
    gpkg = http.get("/analytics/emerging", params={**params, "format": "gpkg"})
    assert gpkg.headers["content-type"] == "application/geopackage+sqlite3"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL notes that an in-memory file has no .gpkg extension
        frame = pyogrio.read_dataframe(io.BytesIO(gpkg.content))
    assert len(frame) == len(rows) and frame.crs.to_epsg() == 4326 and "pattern" in frame


@pytest.mark.parametrize("path, params, status", [
    ("complaints", {"period": "2026H3"}, 400),
    ("complaints", {"period": "2026-02-30..2026-03-01"}, 400),
    ("complaints", {"period": "2026", "categories": "E0601,NOPE"}, 400),
    ("complaints", {"period": "2026", "level": "building"}, 422),
    ("hotspots", {"period": "2026", "level": "street"}, 422),
    ("hotspots", {"period": "2026", "permutations": 100000}, 422),
    ("hexagons", {"period": "2026", "resolution": 15}, 422),
    ("emerging", {"period": "2026", "baseline": "last year"}, 400),
    ("coverage", {"format": "geojson"}, 422),
    ("complaints", {"period": "2026", "format": "geojson"}, 422),
])
def test_bad_input_is_a_clear_4xx(http, path, params, status):
    response = http.get(f"/analytics/{path}", params=params)
    assert response.status_code == status
    assert response.json()["detail"]
