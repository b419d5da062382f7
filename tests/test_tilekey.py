"""Tile keys: the SQL function and its Python mirror agree, every tile is one run of keys, and the ranges of a
tile with its buffer hold every point of that area and mark as inner only cells wholly inside it."""

from __future__ import annotations

import math
import random

import psycopg
import pytest

from gis.db.engine import libpq_url
from gis.serve.tilekey import (
    KEY_SIDE,
    KEY_ZOOM,
    cell_of,
    interleave,
    tile_key,
    tile_key_ranges,
)


def mercator_units(lon: float, lat: float) -> tuple[float, float]:
    """A point in zoom-20 cell units, unclamped floats (x to the east, y to the south)."""
    lat = math.radians(lat)
    return ((lon + 180.0) / 360.0 * KEY_SIDE,
            (1.0 - math.log(math.tan(lat) + 1.0 / math.cos(lat)) / math.pi) / 2.0 * KEY_SIDE)


def test_sql_key_equals_the_python_key(empty_db):
    rng = random.Random(7)
    points = [(rng.uniform(-180, 180), rng.uniform(-85, 85)) for _ in range(2000)]
    points += [(117.1 + rng.uniform(-0.3, 0.3), 36.2 + rng.uniform(-0.3, 0.3)) for _ in range(2000)]
    points += [(-180.0, 0.0), (179.9999999, 0.0), (0.0, 89.9), (0.0, -89.9), (117.0, 36.0)]
    with psycopg.connect(libpq_url(empty_db)) as conn:
        keys = conn.execute("SELECT gridgov_tile_key(ST_SetSRID(ST_Point(lon, lat), 4326)) "
                            "FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY p(lon, lat, n) ORDER BY n",
                            ([p[0] for p in points], [p[1] for p in points])).fetchall()
    assert [key for key, in keys] == [tile_key(lon, lat) for lon, lat in points]


def test_the_key_and_the_complaint_table_s_analyse_work_with_an_empty_search_path(empty_db):
    """Autovacuum analyses with an empty search path; the tile-key index's expression must still find PostGIS,
    or `complaint` never gets statistics from autovacuum."""
    with psycopg.connect(libpq_url(empty_db), autocommit=True) as conn:
        conn.execute("SET search_path = ''")
        key = conn.execute("SELECT public.gridgov_tile_key(public.ST_SetSRID(public.ST_Point(117.0, 36.0), 4326))"
                           ).fetchone()[0]
        conn.execute("ANALYZE public.complaint")
    assert key == tile_key(117.0, 36.0)


def test_interleaving_puts_x_on_even_bits_and_y_on_odd_bits():
    assert interleave(1, 0) == 1 and interleave(0, 1) == 2 and interleave(3, 3) == 15
    assert interleave(KEY_SIDE - 1, KEY_SIDE - 1) == (1 << (2 * KEY_ZOOM)) - 1
    # a tile at any zoom is one contiguous run of keys
    rng = random.Random(3)
    for _ in range(200):
        z = rng.randint(0, KEY_ZOOM)
        x, y = rng.randrange(1 << z), rng.randrange(1 << z)
        (low, high, edge), = tile_key_ranges(z, x, y, 0.0)
        assert not edge and high - low == 1 << (2 * (KEY_ZOOM - z))
        shift = KEY_ZOOM - z
        cx, cy = (x << shift) + rng.randrange(1 << shift), (y << shift) + rng.randrange(1 << shift)
        assert low <= interleave(cx, cy) < high


@pytest.mark.parametrize("z", [3, 10, 12, 14, 16, 19, 20, 22])
def test_ranges_hold_the_area_and_inner_cells_lie_inside_it(z):
    rng = random.Random(z)
    for _ in range(20):
        x, y = rng.randrange(1 << z), rng.randrange(1 << z)
        margin, sure = rng.choice([(0.015625, 0.015625), (0.05, 0.02), (0.0, 0.0)])
        ranges = tile_key_ranges(z, x, y, margin, sure_margin=sure)
        assert ranges == sorted(ranges) and all(a.high <= b.low for a, b in zip(ranges, ranges[1:]))

        def covering(key):
            for cover in ranges:
                if cover.low <= key < cover.high:
                    return cover
            return None

        scale = KEY_SIDE / (1 << z)
        for _ in range(400):
            # points in the tile grown by the margin, in zoom-20 units: each must be covered
            u = x * scale + rng.uniform(-margin, 1 + margin) * scale
            v = y * scale + rng.uniform(-margin, 1 + margin) * scale
            if not (0 <= u < KEY_SIDE and 0 <= v < KEY_SIDE):
                continue
            assert covering(interleave(int(u), int(v))) is not None
        for _ in range(400):
            # points anywhere near: any covered by an inner range lie within the sure area
            u = x * scale + rng.uniform(-1, 2) * scale
            v = y * scale + rng.uniform(-1, 2) * scale
            if not (0 <= u < KEY_SIDE and 0 <= v < KEY_SIDE):
                continue
            cover = covering(interleave(int(u), int(v)))
            if cover is not None and not cover.edge:
                grow = sure * scale + 1
                assert x * scale - grow <= u <= (x + 1) * scale + grow
                assert y * scale - grow <= v <= (y + 1) * scale + grow
                if z <= KEY_ZOOM:
                    assert x * scale - sure * scale <= int(u) and int(u) + 1 <= (x + 1 + sure) * scale


def test_a_point_falls_in_the_tile_its_key_says():
    rng = random.Random(11)
    for _ in range(500):
        lon, lat = rng.uniform(-179, 179), rng.uniform(-80, 80)
        u, v = mercator_units(lon, lat)
        assert cell_of(lon, lat) == (int(u), int(v))
        z = rng.randint(0, KEY_ZOOM)
        scale = KEY_SIDE >> z
        (low, high, _), = tile_key_ranges(z, int(u) // scale, int(v) // scale, 0.0)
        assert low <= tile_key(lon, lat) < high
