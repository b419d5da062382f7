"""Coordinate systems: names, published reference points, round trips measured in metres, error cases."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely

from gis.errors import InvalidInput
from gis.layers.crs import from_storage, normalise_crs, to_storage, transform_geometries

GEOD = pyproj.Geod(ellps="WGS84")


def metres(lon_a, lat_a, lon_b, lat_b) -> np.ndarray:
    _, _, distance = GEOD.inv(np.atleast_1d(lon_a), np.atleast_1d(lat_a), np.atleast_1d(lon_b), np.atleast_1d(lat_b))
    return np.asarray(distance)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wgs84", "EPSG:4326"), ("WGS-84", "EPSG:4326"), ("EPSG:4326", "EPSG:4326"), ("4326", "EPSG:4326"),
        ("CRS84", "EPSG:4326"), ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "EPSG:4326"),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326"),
        ("cgcs2000", "EPSG:4490"), ("EPSG:4490", "EPSG:4490"),
        ("gcj02", "GCJ-02"), ("GCJ-02", "GCJ-02"), ("amap", "GCJ-02"), ("tencent", "GCJ-02"),
        ("bd09", "BD-09"), ("BD-09", "BD-09"), ("baidu", "BD-09"),
        # Gauss–Krüger: every block of EPSG:4491–4554, by code and by name
        ("EPSG:4491", "EPSG:4491"), ("EPSG:4554", "EPSG:4554"), ("4548", "EPSG:4548"),
        ("CGCS2000 / 3-degree Gauss-Kruger CM 117E", "EPSG:4548"),
        ("CGCS2000 / 3-degree Gauss-Kruger zone 39", "EPSG:4527"),
        ("cgcs2000 3-degree zone 39", "EPSG:4527"),
        ("CGCS2000 / Gauss-Kruger zone 20", "EPSG:4498"),
        ("CGCS2000 / Gauss-Kruger CM 117E", "EPSG:4509"),
        ("EPSG:3857", "EPSG:3857"), ("WGS 84 / UTM zone 50N", "EPSG:32650"),
    ],
)
def test_names_are_normalised(name, expected):
    assert normalise_crs(name) == expected


@pytest.mark.parametrize("name", ["", "mars2", "EPSG:999999", "CGCS2000 3-degree zone 99", "cgcs2000 cm 118e"])
def test_unknown_names_are_refused(name):
    with pytest.raises(InvalidInput):
        normalise_crs(name)


# Published WGS-84 → GCJ-02 pairs (lon, lat): the test tables of the open-source "eviltransform" libraries
# (Shanghai, Shenzhen, Beijing), and the worked example in the "coordtransform" library's documentation.
WGS_GCJ_REFERENCE = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
    ((116.404, 39.915), (116.41024449916938, 39.91640428150164)),
]
# Published WGS-84 → GCJ-02 → BD-09 chain (lon, lat), from the tests of the open-source "geotool" command.
WGS_BD_REFERENCE = [((121.0917077, 30.6107779), (121.10271732371203, 30.61484572185035))]
# Published GCJ-02 → BD-09 pair (lon, lat): the "coordtransform" documentation's example.
GCJ_BD_REFERENCE = [((116.404, 39.915), (116.41036949371029, 39.92133699351021))]


@pytest.mark.parametrize(("wgs", "gcj"), WGS_GCJ_REFERENCE)
def test_gcj02_against_published_points(wgs, gcj):
    forward = from_storage(*wgs, "GCJ-02")
    assert metres(*forward, *gcj)[0] < 0.01
    back = to_storage(*gcj, "GCJ-02")
    assert metres(*back, *wgs)[0] < 0.01


@pytest.mark.parametrize(("wgs", "bd"), WGS_BD_REFERENCE)
def test_bd09_against_published_points(wgs, bd):
    assert metres(*from_storage(*wgs, "BD-09"), *bd)[0] < 0.05
    assert metres(*to_storage(*bd, "baidu"), *wgs)[0] < 0.05


@pytest.mark.parametrize(("gcj", "bd"), GCJ_BD_REFERENCE)
def test_bd09_offset_from_gcj02_matches_published_point(gcj, bd):
    wgs = to_storage(*gcj, "GCJ-02")
    assert metres(*from_storage(*wgs, "BD-09"), *bd)[0] < 0.01


def test_offsets_are_the_size_of_the_known_shift():
    """Around Tai'an GCJ-02 moves points by some hundreds of metres; a conversion that did nothing would pass
    a round trip, so check the shift itself."""
    lon, lat = 117.1, 36.2
    shift = metres(lon, lat, *from_storage(lon, lat, "GCJ-02"))[0]
    assert 100 < shift < 1000
    assert metres(lon, lat, *from_storage(lon, lat, "BD-09"))[0] > shift


def test_outside_china_gcj02_is_wgs84():
    assert from_storage(2.3522, 48.8566, "GCJ-02") == (2.3522, 48.8566)
    assert to_storage(-74.006, 40.7128, "amap") == (-74.006, 40.7128)


@pytest.mark.parametrize("crs", ["GCJ-02", "BD-09", "EPSG:4548", "EPSG:4527", "EPSG:4498", "EPSG:3857"])
def test_round_trips_stay_well_under_a_metre(crs):
    rng = np.random.default_rng(42)
    lon = rng.uniform(116.3, 117.7, 5_000)
    lat = rng.uniform(35.6, 36.8, 5_000)
    x, y = from_storage(lon, lat, crs)
    back_lon, back_lat = to_storage(x, y, crs)
    error = metres(lon, lat, back_lon, back_lat)
    assert error.max() < 0.001, f"{crs}: worst round-trip error {error.max():.6f} m"


def test_cgcs2000_geographic_is_taken_as_wgs84():
    assert to_storage(117.1, 36.2, "CGCS2000") == (117.1, 36.2)


def test_gauss_kruger_zone_round_trip_and_false_easting():
    # The central meridian maps to the false easting: 500 km, prefixed with the zone number where the EPSG
    # system says so (3-degree zone 39 is centred on 117E).
    x_plain, y_plain = from_storage(117.0, 36.2, "EPSG:4548")
    x_zone, y_zone = from_storage(117.0, 36.2, "CGCS2000 3-degree zone 39")
    assert x_plain == pytest.approx(500_000.0, abs=1e-6)
    assert x_zone == pytest.approx(39_500_000.0, abs=1e-6)
    assert y_plain == pytest.approx(y_zone)
    # A point 1 km east of the meridian stands about 1 km east in the projection.
    x_east, _ = from_storage(117.0 + 1000 / (111_320 * np.cos(np.radians(36.2))), 36.2, "EPSG:4548")
    assert x_east - 500_000 == pytest.approx(1000, abs=5)
    # Eastings written in the other prefix convention are still read as meant.
    assert metres(*to_storage(x_plain, y_plain, "EPSG:4527"), 117.0, 36.2)[0] < 0.001
    assert metres(*to_storage(x_zone, y_zone, "EPSG:4548"), 117.0, 36.2)[0] < 0.001


def test_arrays_and_scalars():
    lon, lat = to_storage([117.1, 117.2], [36.2, 36.3], "gcj02")
    assert isinstance(lon, np.ndarray) and lon.shape == (2,)
    single = to_storage(117.1, 36.2, "gcj02")
    assert isinstance(single[0], float)
    assert single == pytest.approx((lon[0], lat[0]), abs=1e-12)


@pytest.mark.parametrize(
    ("x", "y", "crs"),
    [
        (float("nan"), 36.2, "EPSG:4326"),
        (117.1, float("inf"), "GCJ-02"),
        (200.0, 36.2, "EPSG:4326"),
        (117.1, -95.0, "wgs84"),
        ([117.1, 117.2], [36.2], "wgs84"),
        ("east", 36.2, "wgs84"),
        (117.1, 36.2, "no such system"),
    ],
)
def test_bad_coordinates_are_refused(x, y, crs):
    with pytest.raises(InvalidInput):
        to_storage(x, y, crs)


def test_unchecked_conversion_leaves_bad_points_to_the_caller():
    lon, lat = to_storage([117.1, np.nan, 500.0], [36.2, 36.2, 36.2], "EPSG:4326", check=False)
    assert np.isnan(lon[1]) and lon[2] == 500.0


def test_transform_geometries_moves_every_vertex():
    square = shapely.box(117.10, 36.20, 117.11, 36.21)
    gcj = transform_geometries(np.array([square]), "GCJ-02", inverse=True)
    back = transform_geometries(gcj, "GCJ-02")
    assert not shapely.equals_exact(gcj[0], square, tolerance=1e-5)
    coordinates = shapely.get_coordinates(back[0])
    original = shapely.get_coordinates(square)
    assert metres(coordinates[:, 0], coordinates[:, 1], original[:, 0], original[:, 1]).max() < 0.001
    projected = transform_geometries(np.array([square]), "EPSG:4548", inverse=True)
    area = shapely.area(projected[0])
    assert 900_000 < area < 1_200_000  # about 0.01° × 0.01° at 36°N, in m²
