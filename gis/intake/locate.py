"""Vectorised point-in-polygon for large batches: micro-grids and buildings held as shapely arrays once per
import, each chunk's points placed with one STRtree query (the tree built on the points, which the polygons'
many vertices make the faster side), the answers then copied into the batch's tables.

The answers are those of the SQL in `placement.py`, rule for rule: a polygon version counts when it is valid on
the complaint's local day, boundaries count as inside, and ties go to the lowest code. Snapping stays in SQL (it
measures distances on the sphere, as PostGIS geography does) but is handed only the points that have a
micro-grid within the snap box; the rest are known to go to review.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import psycopg
import shapely


@dataclass
class PolygonVersions:
    """Every version of a layer's polygons (history included: a complaint is placed as of its own day)."""

    ids: np.ndarray
    codes: np.ndarray
    rank: np.ndarray
    """Position of each code in code order, so "lowest code" is a comparison of integers."""
    valid_from: np.ndarray
    valid_to: np.ndarray
    geoms: np.ndarray
    attributes: dict[str, np.ndarray]
    _tree: shapely.STRtree | None = None

    @classmethod
    def load(cls, conn: psycopg.Connection, table: str, attributes: tuple[str, ...] = ()) -> "PolygonVersions":
        extra = "".join(f", {name}" for name in attributes)
        with conn.cursor(binary=True) as cur:
            # days since 1970 convert to numpy dates at once, where date objects go one by one
            rows = cur.execute(f"SELECT id, code, valid_from - DATE '1970-01-01', "
                               f"coalesce(valid_to, DATE '9999-12-31') - DATE '1970-01-01'{extra}, "
                               f"ST_AsBinary(geom) FROM {table} WHERE geom IS NOT NULL").fetchall()
        columns = list(zip(*rows)) if rows else [[] for _ in range(5 + len(attributes))]
        codes = np.array(columns[1], dtype=object)
        rank = np.empty(len(codes), dtype=np.int64)
        rank[np.argsort(codes.astype(str), kind="stable")] = np.arange(len(codes))
        return cls(
            ids=np.array(columns[0], dtype=np.int64), codes=codes, rank=rank,
            valid_from=np.array(columns[2], dtype=np.int64).astype("datetime64[D]"),
            valid_to=np.array(columns[3], dtype=np.int64).astype("datetime64[D]"),
            geoms=shapely.from_wkb(np.array(columns[-1], dtype=object)),
            attributes={name: np.array(columns[4 + i], dtype=object) for i, name in enumerate(attributes)},
        )

    def lowest_hits(self, pairs: tuple[np.ndarray, np.ndarray], days: np.ndarray,
                    wanted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """From the (polygon, point) pairs of a query, for each point (only those `wanted`, when given) that lies
        in (or on) a version valid on its day: (point index, polygon index) of the lowest-coded such polygon."""
        polygon, point = pairs
        valid = (self.valid_from[polygon] <= days[point]) & (days[point] < self.valid_to[polygon])
        if wanted is not None:
            valid &= wanted[point]
        polygon, point = polygon[valid], point[valid]
        order = np.lexsort((self.rank[polygon], point))
        point, polygon = point[order], polygon[order]
        first = np.unique(point, return_index=True)[1]
        return point[first], polygon[first]

    def near(self, points: np.ndarray, distance: float) -> np.ndarray:
        """Indexes of the points with some polygon (of any version) within `distance` degrees."""
        if len(points) == 0 or len(self.geoms) == 0:
            return np.empty(0, dtype=np.int64)
        if self._tree is None:
            self._tree = shapely.STRtree(self.geoms)  # built once per import, on first need
        point = self._tree.query(points, predicate="dwithin", distance=distance)[0]
        return np.unique(point)


SPHERE_METRES_PER_DEGREE = 6_371_008.8 * math.pi / 180
"""Along a meridian on PostGIS's sphere (its geography distances without the spheroid)."""


def snap_box_degrees(snap_m: float, lats: np.ndarray) -> float:
    """A distance in degrees that every point within `snap_m` metres (on the sphere) of a polygon is within, in
    plain lon/lat, for points at these latitudes: a degree of longitude is shortest at the highest of them (a
    hundredth of a degree higher, and 1% more, for the few metres a 200 m step can climb and for rounding)."""
    if len(lats) == 0:
        return 0.0
    highest = min(float(np.max(np.abs(lats))) + 0.01, 89.0)
    return snap_m * 1.01 / (SPHERE_METRES_PER_DEGREE * math.cos(math.radians(highest)))


@dataclass
class Placement:
    """What the vectorised step found for a chunk's staged rows (indexes into the staged lists)."""

    inside_rows: np.ndarray
    micro_grid: np.ndarray
    """Polygon index in `Locator.micro_grids` of each inside row."""
    building_codes: dict[int, str]
    """Staged row index → code of the building it lies in (inside rows without a building code only)."""
    snap_candidates: np.ndarray
    """Staged row indexes outside every micro-grid but within the snap box of one: for the SQL snap step."""


class Locator:
    """The micro-grids and buildings of the city, loaded once and used for every large chunk of an import."""

    def __init__(self, conn: psycopg.Connection):
        self.micro_grids = PolygonVersions.load(conn, "micro_grid", ("grid_code", "compound_code"))
        self.buildings = PolygonVersions.load(conn, "building")
        grids = self.micro_grids
        # codes that COPY's text format takes as they are (no tab, newline or backslash), checked once
        self.plain_codes = not any(any(ch in str(value) for ch in "\t\n\r\\")
                                   for values in (grids.codes, *grids.attributes.values()) for value in values
                                   if value is not None)

    def place(self, lon: list, lat: list, local_day: list, building_code: list, snap_m: float) -> Placement:
        """Place a chunk's staged rows (parallel lists; rows without a point are left to review): the micro-grid
        and building each point lies in as of its day, and the points close enough outside to try snapping."""
        with_point = np.array([x is not None and y is not None for x, y in zip(lon, lat)], dtype=bool)
        rows = np.flatnonzero(with_point)
        xs = np.array([lon[i] for i in rows], dtype=np.float64)
        ys = np.array([lat[i] for i in rows], dtype=np.float64)
        points = shapely.points(xs, ys)
        days = np.array([local_day[i] for i in rows], dtype="datetime64[D]")
        # One tree on the points serves both layers (the polygons' many vertices make the points the fast side);
        # shapely lets go of the GIL while it queries, so the two layers are searched on two cores at once.
        tree = shapely.STRtree(points)
        with ThreadPoolExecutor(2) as pool:
            building_pairs = pool.submit(tree.query, self.buildings.geoms, predicate="intersects")
            grid_pairs = tree.query(self.micro_grids.geoms, predicate="intersects")
            building_pairs = building_pairs.result()
        hit_point, hit_polygon = self.micro_grids.lowest_hits(grid_pairs, days)
        inside = np.zeros(len(rows), dtype=bool)
        inside[hit_point] = True
        # buildings only matter for rows placed inside that do not name their building already
        asked = inside & np.array([building_code[row] is None for row in rows.tolist()], dtype=bool)
        building_point, building_polygon = self.buildings.lowest_hits(building_pairs, days, wanted=asked)
        building_codes = {int(rows[p]): code
                          for p, code in zip(building_point.tolist(), self.buildings.codes[building_polygon])}
        outside = np.flatnonzero(~inside)
        near = self.micro_grids.near(points[outside], snap_box_degrees(snap_m, ys[outside]))
        return Placement(inside_rows=rows[hit_point], micro_grid=hit_polygon, building_codes=building_codes,
                         snap_candidates=rows[outside[near]])

    def write(self, conn: psycopg.Connection, row_no: list, lon: list, lat: list, local_day: list,
              placement: Placement) -> int:
        """The inside rows into the batch's `intake_placed`, as the SQL hit step would have put them, and the snap
        candidates into `intake_unplaced`; returns how many candidates."""
        grids = self.micro_grids
        polygon = placement.micro_grid
        hits = zip(np.asarray(row_no, dtype=np.int64)[placement.inside_rows].tolist(), grids.ids[polygon].tolist(),
                   grids.codes[polygon], grids.attributes["grid_code"][polygon],
                   grids.attributes["compound_code"][polygon])
        with conn.cursor() as cur:
            with cur.copy("COPY intake_placed (row_no, micro_grid_id, micro_grid_code, grid_code, compound_code, "
                          "placement) FROM STDIN") as copy:
                if self.plain_codes:
                    # one text block: a row at a time through the driver costs several times more
                    null = "\\N"
                    copy.write("".join(f"{number}\t{ident}\t{code}\t{grid}\t{null if compound is None else compound}"
                                       "\tinside\n" for number, ident, code, grid, compound in hits))
                else:
                    for hit in hits:
                        copy.write_row((*hit, "inside"))
            candidates = placement.snap_candidates
            if len(candidates):
                points = shapely.to_wkb(shapely.set_srid(shapely.points(
                    np.array([lon[i] for i in candidates], dtype=np.float64),
                    np.array([lat[i] for i in candidates], dtype=np.float64)), 4326), hex=True, include_srid=True)
                with cur.copy("COPY intake_unplaced (row_no, local_day, geom) FROM STDIN") as copy:
                    for index, point in zip(candidates.tolist(), points):
                        copy.write_row((row_no[index], local_day[index], point))
        return len(placement.snap_candidates)
