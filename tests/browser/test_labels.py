"""Building labels at zoom 17 on the small city, measured in Debian's Chromium: no label covers another building's
footprint or another label, and most visible buildings still carry their number.

The footprints come from the database, are projected to the screen by the page's own map, and are compared with
the labels' rectangles as the browser laid them out (shapely does the geometry). The measure — the share of
visible buildings whose footprint a label of another building covers — is printed for the report.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from shapely.geometry import Polygon, box, shape

from gis.db.engine import libpq_url
from tests.browser.harness import Browser, checked_page

LAYERS = "street,community,grid,micro_grid,compound,building"
DESKTOP = {"width": 1280, "height": 800}


def sql(url: str, query: str, params=()) -> list[tuple]:
    """Rows of one statement."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def browser(live_app):
    driver = Browser(live_app.url)
    yield driver
    driver.close()


def busiest_compounds(url: str, count: int) -> list[tuple[float, float]]:
    """Centres of the compounds with the most buildings: the densest views of the city."""
    return [(x, y) for x, y in sql(url, """
        SELECT ST_X(ST_Centroid(c.geom)), ST_Y(ST_Centroid(c.geom)) FROM compound c
        WHERE c.valid_to IS NULL
        ORDER BY (SELECT count(*) FROM building b WHERE b.compound_code = c.code AND b.valid_to IS NULL) DESC, c.code
        LIMIT %s""", (count,))]


def footprints_on_screen(page, url: str) -> dict[str, Polygon]:
    """Every current building in view as a polygon in the map's container pixels."""
    west, south, east, north = page.evaluate(
        "() => { const b = window.gridgov.map.getBounds(); return [b.getWest(), b.getSouth(), b.getEast(),"
        " b.getNorth()]; }")
    rows = sql(url, "SELECT code, ST_AsGeoJSON(geom) FROM building WHERE valid_to IS NULL"
                    " AND geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)", (west, south, east, north))
    rings = {code: [list(p) for p in shape(json.loads(geojson)).geoms[0].exterior.coords]
             if json.loads(geojson)["type"] == "MultiPolygon"
             else [list(p) for p in shape(json.loads(geojson)).exterior.coords] for code, geojson in rows}
    projected = page.evaluate("""(rings) => Object.fromEntries(Object.entries(rings).map(([code, ring]) =>
        [code, ring.map(([lon, lat]) => { const p = window.gridgov.map.latLngToContainerPoint([lat, lon]);
                                          return [p.x, p.y]; })]))""", rings)
    return {code: Polygon(ring) for code, ring in projected.items()}


def labels_on_screen(page, layer: str) -> list[dict]:
    """The labels of a layer as laid out: text, anchor (lon, lat) and rectangle in container pixels."""
    return page.evaluate("""(layer) => {
        const map = window.gridgov.map;
        const origin = map.getContainer().getBoundingClientRect();
        const labels = [];
        window.gridgov.layers[layer].labels.eachLayer((tooltip) => {
            const element = tooltip.getElement();
            if (!element) return;
            const r = element.getBoundingClientRect();
            const at = tooltip.getLatLng();
            labels.push({ text: element.textContent, lon: at.lng, lat: at.lat,
                          rect: [r.left - origin.left, r.top - origin.top, r.right - origin.left,
                                 r.bottom - origin.top] });
        });
        return labels;
    }""", layer)


def measure(page, url: str) -> dict:
    """What the labels in view cover: visible buildings, those labelled, those a label of another building (or a
    compound's label) covers, and labels overlapping each other."""
    size = page.evaluate("() => { const s = window.gridgov.map.getSize(); return [s.x, s.y]; }")
    screen = box(0, 0, size[0], size[1])
    footprints = {code: polygon for code, polygon in footprints_on_screen(page, url).items()
                  if polygon.intersects(screen)}
    building_labels = labels_on_screen(page, "building")
    anchors = sql(url, """SELECT l.i, b.code FROM json_to_recordset(%s::json) AS l(i int, lon float8, lat float8)
                          JOIN building b ON b.valid_to IS NULL
                           AND ST_Contains(b.geom, ST_SetSRID(ST_MakePoint(l.lon, l.lat), 4326))""",
                  (json.dumps([dict(label, i=i) for i, label in enumerate(building_labels)]),))
    owner = dict(anchors)
    rects = [(owner.get(i), box(*label["rect"])) for i, label in enumerate(building_labels)]
    compound_rects = [box(*label["rect"]) for label in labels_on_screen(page, "compound")]
    covered = {code for code, polygon in footprints.items()
               if any(own != code and rect.intersection(polygon).area > 0.5 for own, rect in rects)}
    by_compound_label = {code for code, polygon in footprints.items()
                         if any(rect.intersection(polygon).area > 0.5 for rect in compound_rects)}
    every = [rect for _, rect in rects] + compound_rects
    overlaps = sum(1 for i, a in enumerate(every) for b in every[i + 1:] if a.intersection(b).area > 0.5)
    building_overlaps = sum(1 for i, (_, a) in enumerate(rects) for _, b in rects[i + 1:]
                            if a.intersection(b).area > 0.5)
    labelled = {own for own, _ in rects if own in footprints}
    # a small building its own label hides: more than half its footprint under the label
    hidden_by_own = {own for own, rect in rects if own in footprints
                     and rect.intersection(footprints[own]).area > 0.5 * footprints[own].area}
    return {"visible": len(footprints), "labelled": len(labelled), "covered": len(covered),
            "covered_by_compound_labels": len(by_compound_label), "label_overlaps": overlaps,
            "building_label_overlaps": building_overlaps,
            "unanchored": sum(1 for own, _ in rects if own is None),
            "numbers_only": sum(1 for label in building_labels if "号楼" not in label["text"]),
            "compound_labels": len(compound_rects), "hidden_by_own_label": len(hidden_by_own)}


def test_labels_at_zoom_17_cover_no_other_building(browser, city_db):
    totals = {"visible": 0, "labelled": 0, "covered": 0, "covered_by_compound_labels": 0, "label_overlaps": 0,
              "building_label_overlaps": 0, "unanchored": 0, "numbers_only": 0, "compound_labels": 0,
              "hidden_by_own_label": 0}
    with checked_page(browser) as page:
        page.set_viewport_size(DESKTOP)
        for lon, lat in busiest_compounds(city_db, 4):
            page.goto("about:blank")  # a fresh load per view: a changed fragment alone would move the open map
            browser.open_map(page, f"#v=17/{lat:.6f}/{lon:.6f}&l={LAYERS}")
            assert page.evaluate("window.gridgov.map.getZoom()") == 17
            for key, value in measure(page, city_db).items():
                totals[key] += value
    share = totals["covered"] / totals["visible"]
    print(f"\nlabels at z17: {totals}; share of visible buildings covered by another building's label:"
          f" {100 * share:.1f}%; labelled {100 * totals['labelled'] / totals['visible']:.1f}%")
    assert totals["visible"] > 100, totals
    assert totals["unanchored"] == 0, "every building label sits inside its own building"
    assert totals["covered"] == 0, totals
    assert totals["covered_by_compound_labels"] == 0, totals
    assert totals["label_overlaps"] == 0, totals
    assert totals["labelled"] >= 0.5 * totals["visible"], totals


def test_building_label_footprints_are_the_buildings_outlines(http, city_db):
    lon, lat = busiest_compounds(city_db, 1)[0]
    bbox = (lon - 0.002, lat - 0.002, lon + 0.002, lat + 0.002)
    rows = http.get("/map/building-labels.json", params={"bbox": ",".join(map(str, bbox)), "footprint": "true"}).json()
    plain = http.get("/map/building-labels.json", params={"bbox": ",".join(map(str, bbox))}).json()
    assert rows and sorted(row[:3] for row in rows) == sorted(plain), "the same points and numbers, and a ring"
    outlines = [Polygon([(x + ring[i] / 1e6, y + ring[i + 1] / 1e6) for i in range(0, len(ring), 2)])
                for x, y, _, ring in rows]
    matched = sql(city_db, """SELECT count(*) FROM json_to_recordset(%s::json) AS o(number int, wkt text)
                              WHERE EXISTS (SELECT 1 FROM building b WHERE b.valid_to IS NULL AND b.number = o.number
                                  AND ST_Area(ST_SymDifference(b.geom, ST_GeomFromText(o.wkt, 4326)))
                                      < 0.05 * ST_Area(b.geom))""",
                  (json.dumps([{"number": row[2], "wkt": outline.wkt} for row, outline in zip(rows, outlines)]),))
    assert matched[0][0] == len(rows)
    assert http.get("/map/building-labels.json", params={"bbox": ",".join(map(str, bbox)),
                                                         "footprint": "perhaps"}).status_code == 422
