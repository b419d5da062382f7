"""A map to hand on: one self-contained HTML file of a street or a district, made with folium, that opens offline
on any intranet machine (离线交互地图).

Its layers, each switchable and each with its legend entries: complaint hot and cold spots per micro-grid
(Getis-Ord Gi* classes of gis/analytics/hotspots.py), compounds filled by management mode (old estates dashed),
the coverage gaps (空白点) and the party organisations, over the outlines of the area's communities or streets.
A title box names the area, the hotspots' period and the time the file was made (Beijing time).

Nothing in the file is fetched: folium's default links (Leaflet from a CDN, jQuery, Bootstrap, Font Awesome and
its glyph fonts) are replaced, element by element, by the locally vendored npm copies inlined as <script> and
<style> (the images Leaflet's CSS names become data: URLs, source-map comments are dropped); an element asking
for a library without a local copy is a SetupError, never a link. No web font is named, no base map is drawn.

Privacy: the file leaves the system, so it holds public-grade data only, whoever makes it: compound names, modes
and figures, party organisations' names, kinds and member counts (never a secretary or a phone), and complaint
counts aggregated per micro-grid. No complaint, text or point of one is read here, so none of
gis/access/visibility.py's per-complaint rules apply; contacts are left out as for its `contacts="none"`.

The gaps are gis/analytics/programme.py's (`gaps`, the one definition the dashboard, the API and the map page
use): a compound with no management at all, or an old estate no company or community manages.
"""

from __future__ import annotations

import base64
import html
import json
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, text

from gis.access.auth import Principal
from gis.analytics import programme
from gis.analytics.hotspots import hotspots
from gis.analytics.periods import LOCAL_TIME, Period, parse_period
from gis.errors import Forbidden, InvalidInput, NotFound, SetupError
from gis.reports.jobs import REPORTERS
from gis.serve.mapdata import _PARTY_SQL, PARTY_KINDS_BY_ZOOM
from gis.settings import export_settings

LEVELS = ("street", "district")
GAP_DEFINITION_ZH = "空白点：无物业管理的小区，以及无物业企业或社区代管的老旧小区（与规划指标口径一致）"

LOCAL_ASSETS = {
    "leaflet": "leaflet/leaflet.js",
    "leaflet_css": "leaflet/leaflet.css",
    "markercluster": "markercluster/leaflet.markercluster.js",
    "markerclustercss": "markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": "markercluster/MarkerCluster.Default.css",
    "leaflet.heat": "heat/leaflet-heat.js",
}
"""folium's names of the libraries its elements link to -> the vendored copy inlined instead (under vendor_dir)."""
NOT_NEEDED = frozenset({"jquery", "bootstrap", "bootstrap_css", "glyphicons_css", "awesome_markers",
                        "awesome_markers_css", "awesome_markers_font_css", "awesome_rotate_css"})
"""folium's defaults for its Bootstrap popups and icon markers (with Font Awesome's web fonts): this map draws
neither, so they are left out rather than inlined."""

MODES = {  # (name, fill colour), as webmap/static/map/names.js shows them
    "professional": ("专业化物业", "#1e8449"), "community_led": ("社区领办", "#2e86c1"),
    "entrusted": ("社区代管", "#f39c12"), "self_managed": ("居民自管", "#8e44ad"), "none": ("无物业", "#c0392b"),
}
HOT_CLASSES = {  # Gi* confidence bin -> (name, fill colour): red hot, blue cold, darker = more confident
    3: ("热点（99% 置信）", "#b2182b"), 2: ("热点（95% 置信）", "#ef8a62"), 1: ("热点（90% 置信）", "#fddbc7"),
    0: ("不显著", "#f7f7f7"),
    -1: ("冷点（90% 置信）", "#d1e5f0"), -2: ("冷点（95% 置信）", "#67a9cf"), -3: ("冷点（99% 置信）", "#2166ac"),
}
NO_HOUSEHOLDS = ("无住户（不参与统计）", "#e0e0e0")
PARTY_KINDS = {  # kind -> (name, fill colour, radius)
    "community_committee": ("社区党委", "#d4000f", 8), "grid_branch": ("网格党支部", "#e74c3c", 6),
    "compound_branch": ("小区党支部", "#f1948a", 5),
}
GAP_COLOUR = "#c0392b"
LAYER_TITLES = {"outline": "行政边界", "hotspot": "投诉冷热点（Gi*，微网格）", "mode": "物业管理模式覆盖",
                "gap": "物业服务空白点", "party": "党组织"}
"""The switchable layers, in drawing order, as the layer switch and the legend name them."""


@dataclass
class MapExport:
    """The finished file and what went into it."""

    html: str
    area: dict
    period: str
    made_at: datetime
    counts: dict
    seconds: float

    @property
    def filename(self) -> str:
        """A download name: the area's code and the day made."""
        return f"map-{self.area['code']}-{self.made_at:%Y%m%d}.html"


# --- what the map shows ---------------------------------------------------------------------------------------

def resolve_area(conn: Connection, level: str, code: str) -> dict:
    """The current street or district with this code: code, name, level, the district's name and its extent."""
    if level not in LEVELS:
        raise InvalidInput("请选择街道或区县：street 或 district")
    code = (code or "").strip()
    if not re.fullmatch(r"\d{9}" if level == "street" else r"\d{6}", code):
        raise InvalidInput(f"{'街道编码应为 9 位数字' if level == 'street' else '区县编码应为 6 位数字'}，不是“{code}”")
    parent = "(SELECT d.name FROM district d WHERE d.code = a.district_code AND d.valid_to IS NULL)" \
        if level == "street" else "NULL"
    row = conn.execute(text(f"""
        SELECT a.code, a.name, {parent} AS parent_name, ST_XMin(e) AS west, ST_YMin(e) AS south,
               ST_XMax(e) AS east, ST_YMax(e) AS north, ST_AsGeoJSON(a.geom, 6) AS geometry
        FROM {level} a, LATERAL (SELECT ST_Envelope(a.geom) AS e) box
        WHERE a.code = :code AND a.valid_to IS NULL"""), {"code": code}).mappings().first()
    if row is None:
        raise NotFound(f"没有找到{'街道' if level == 'street' else '区县'} {code}")
    return {**row, "level": level}


def authorise(principal: Principal, street: str | None, district: str | None) -> tuple[str, str]:
    """The (level, code) asked for, when the caller may make its map: those who may ask for a street report
    (gis/reports/jobs.py), planners and the administrator everywhere, a street office its own street only (any
    other area NotFound, as out of scope). The role is checked before the area is read."""
    if principal.role not in REPORTERS:
        raise Forbidden("只有街道、规划人员或管理员可以导出地图")
    level, code = choose_area(street, district)
    if principal.role == "street" and not (level == "street" and code in principal.scope):
        raise NotFound(f"没有找到{'街道' if level == 'street' else '区县'} {code}")
    return level, code


def choose_area(street: str | None, district: str | None) -> tuple[str, str]:
    """(level, code) from the two ways of naming the area; exactly one must be given."""
    street, district = (street or "").strip(), (district or "").strip()
    if bool(street) == bool(district):
        raise InvalidInput("请只选择一个区域：街道（street，9 位编码）或区县（district，6 位编码）")
    return ("street", street) if street else ("district", district)


def _outlines(conn: Connection, area: dict) -> list[dict]:
    """The area's own outline and those of its children (communities of a street, streets of a district)."""
    child, column = ("community", "street_code") if area["level"] == "street" else ("street", "district_code")
    rows = conn.execute(text(f"""
        SELECT code, name, ST_AsGeoJSON(geom, 6) AS geometry FROM {child}
        WHERE valid_to IS NULL AND {column} = :code ORDER BY code"""), {"code": area["code"]}).mappings().all()
    own = {"code": area["code"], "name": area["name"], "geometry": area["geometry"], "own": True}
    return [own] + [{**row, "own": False} for row in rows]


def _compounds(conn: Connection, area: dict) -> list[dict]:
    """The area's current compounds with their public attributes."""
    rows = conn.execute(text("""
        SELECT cp.code, cp.name, cp.management_mode, cp.is_old_estate, cp.households, cp.floor_area_m2,
               cp.build_year, ST_AsGeoJSON(cp.geom, 6) AS geometry
        FROM compound cp
        JOIN community cm ON cm.code = cp.community_code AND cm.valid_to IS NULL
        WHERE cp.valid_to IS NULL AND cp.community_code LIKE :prefix
        ORDER BY cp.code"""), {"prefix": area["code"] + "%"}).mappings().all()
    return [dict(row) for row in rows]


def _party(conn: Connection, area: dict) -> list[dict]:
    """Party organisations placed inside the units they serve (the map's own rule, gis/serve/mapdata.py), with
    their public fields only."""
    envelope = "ST_MakeEnvelope(:west, :south, :east, :north, 4326)"
    rows = conn.execute(text(_PARTY_SQL.text.replace(":env", envelope)), {
        "west": area["west"], "south": area["south"], "east": area["east"], "north": area["north"],
        "kinds": list(PARTY_KINDS_BY_ZOOM)}).scalar_one()
    features = json.loads(rows)["features"]
    return [feature for feature in features if feature["properties"]["unit_code"].startswith(area["code"])]


def default_period(today: date | None = None) -> Period:
    """The year up to today (Beijing time), as the map page's hotspots default to."""
    today = today or datetime.now(LOCAL_TIME).date()
    return parse_period(f"{today - timedelta(days=365):%Y-%m-%d}..{today:%Y-%m-%d}")


def _hotspots(conn: Connection, area: dict, period: Period) -> list[dict]:
    """Gi* of complaint rates per micro-grid over the whole city, the area's micro-grids returned: aggregates."""
    figure = hotspots(conn, "micro_grid", period, within=area["code"], value="rate", with_geometry=True)
    return [{**row, "geometry": geometry} for row, geometry in zip(figure.rows, figure.geometries) if geometry]


# --- drawing --------------------------------------------------------------------------------------------------

def _feature(geometry: str, properties: dict, code: str) -> dict:
    # an id keeps folium's per-feature style switch on short codes instead of the longest unique property
    return {"type": "Feature", "id": code, "geometry": json.loads(geometry), "properties": properties}


def _tip(*lines: str) -> str:
    return "<br>".join(html.escape(line) for line in lines)


def _hotspot_layer(folium, rows: list[dict]):
    features = []
    for row in rows:
        bin_ = row["confidence_bin"]
        name, colour = HOT_CLASSES[bin_] if bin_ is not None else NO_HOUSEHOLDS
        rate = "—" if row["rate_per_1000"] is None else f"{row['rate_per_1000']:.1f}"
        # only the significant classes are filled: "not significant" is an outline, so the map below shows
        opacity = 0.0 if bin_ == 0 else 0.35 if bin_ is None else 0.75
        features.append(_feature(row["geometry"], {"fill": colour, "op": opacity, "tip": _tip(
            f"微网格 {row['name']}", name, f"投诉 {row['complaints']} 件，每千户 {rate} 件")}, row["code"]))
    return folium.GeoJson(
        {"type": "FeatureCollection", "features": features}, name=LAYER_TITLES["hotspot"],
        style_function=lambda f: {"className": "gg-hotspot", "color": "#888", "weight": 0.5,
                                  "fillColor": f["properties"]["fill"], "fillOpacity": f["properties"]["op"]},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False), show=False)


def _mode_layer(folium, compounds: list[dict]):
    features = []
    for row in compounds:
        name, colour = MODES.get(row["management_mode"], ("未登记", "#999999"))
        area = f"{(row['floor_area_m2'] or 0) / 10000:.1f} 万m²"
        built = f"{row['build_year'] or '—'} 年建成"
        old = f"老旧小区（{built}）" if row["is_old_estate"] else built
        features.append(_feature(row["geometry"], {"fill": colour, "old": bool(row["is_old_estate"]), "tip": _tip(
            f"{row['name']}（{row['code']}）", f"物业管理模式：{name}", old,
            f"{row['households'] or 0} 户，建筑面积 {area}")}, row["code"]))
    return folium.GeoJson(
        {"type": "FeatureCollection", "features": features}, name=LAYER_TITLES["mode"],
        style_function=lambda f: {"className": "gg-compound", "color": "#4d4d4d" if f["properties"]["old"] else
                                  f["properties"]["fill"], "weight": 2 if f["properties"]["old"] else 1,
                                  "dashArray": "4 3" if f["properties"]["old"] else None,
                                  "fillColor": f["properties"]["fill"], "fillOpacity": 0.55},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False))


def _gaps(conn: Connection, area: dict) -> list[dict]:
    """The area's gap compounds today, as gis/analytics/programme.py finds them, with their shapes."""
    figure = programme.gaps(conn, area["level"], area["code"])
    return [{**row, "geometry": geometry} for row, geometry in zip(figure.rows, figure.geometries) if geometry]


def _gap_layer(folium, gaps: list[dict]):
    features = [_feature(row["geometry"], {"tip": _tip(f"{row['name']}（{row['code']}）", f"空白原因：{row['reason']}",
                                                      f"{row['households'] or 0} 户")}, row["code"])
                for row in gaps]
    return folium.GeoJson(
        {"type": "FeatureCollection", "features": features}, name=LAYER_TITLES["gap"],
        style_function=lambda f: {"className": "gg-gap", "color": GAP_COLOUR, "weight": 4, "fillColor": GAP_COLOUR,
                                  "fillOpacity": 0.15},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False))


def _party_layer(folium, organisations: list[dict]):
    group = folium.FeatureGroup(name=LAYER_TITLES["party"])
    for feature in organisations:
        p = feature["properties"]
        name, colour, radius = PARTY_KINDS[p["kind"]]
        lon, lat = feature["geometry"]["coordinates"]
        folium.CircleMarker([lat, lon], radius=radius, color="#ffd700", weight=2, fill=True, fill_color=colour,
                            fill_opacity=0.95, class_name="gg-party",
                            tooltip=_tip(p["name"], f"{name} · 党员 {p['member_count']} 名")).add_to(group)
    return group


def _outline_layer(folium, outlines: list[dict]):
    features = [_feature(row["geometry"], {"own": row["own"], "tip": _tip(row["name"])}, row["code"])
                for row in outlines]
    return folium.GeoJson(
        {"type": "FeatureCollection", "features": features}, name=LAYER_TITLES["outline"],
        style_function=lambda f: {"className": "gg-outline", "color": "#c0392b" if f["properties"]["own"]
                                  else "#7d3c98", "weight": 3 if f["properties"]["own"] else 1.5,
                                  "dashArray": None if f["properties"]["own"] else "6 4", "fill": False},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False))


def _legend_entries() -> dict[str, list[tuple[str, str]]]:
    """Per layer title, its legend rows as (CSS of the swatch, text)."""
    return {
        LAYER_TITLES["outline"]: [("border:3px solid #c0392b", "本区域边界"),
                                  ("border:2px dashed #7d3c98", "下辖单元边界")],
        LAYER_TITLES["hotspot"]: [(f"background:{colour}" if bin_ else "border:1px solid #888", name)
                                  for bin_, (name, colour) in HOT_CLASSES.items()]
        + [(f"background:{NO_HOUSEHOLDS[1]}", NO_HOUSEHOLDS[0])],
        LAYER_TITLES["mode"]: [(f"background:{colour}", name) for name, colour in MODES.values()]
        + [("border:2px dashed #4d4d4d", "老旧小区（虚线边框）")],
        LAYER_TITLES["gap"]: [(f"border:3px solid {GAP_COLOUR};background:rgba(192,57,43,.15)", GAP_DEFINITION_ZH)],
        LAYER_TITLES["party"]: [(f"background:{colour};border-radius:50%;border:2px solid #ffd700", name)
                                for name, colour, _ in PARTY_KINDS.values()],
    }


PANEL_CSS = """
.gg-box{position:absolute;z-index:1000;background:rgba(255,255,255,.94);padding:8px 10px;border-radius:6px;
  box-shadow:0 1px 5px rgba(0,0,0,.35);font:13px/1.45 "Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;
  max-width:340px}
#gg-title{top:10px;left:54px}
#gg-title h1{font-size:16px;margin:0 0 4px}
#gg-legend{bottom:24px;right:10px;max-height:60vh;overflow:auto}
#gg-legend h2{font-size:13px;margin:6px 0 2px}
#gg-legend summary{font-weight:bold;cursor:pointer}
#gg-legend div.row{display:flex;align-items:center;gap:6px}
#gg-legend i{display:inline-block;width:14px;height:12px;flex:none;box-sizing:border-box}
.leaflet-container{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;background:#f4f1ea}
@media (max-width:600px){.gg-box{max-width:62vw;font-size:11px}#gg-title{left:46px}#gg-legend{max-height:40vh}}
"""

LEGEND_SCRIPT = """
{% macro script(this, kwargs) %}
(function (map) {
  function show(name, on) {
    document.querySelectorAll('#gg-legend section').forEach(function (s) {
      if (s.dataset.layer === name) s.hidden = !on;
    });
  }
  map.on('overlayadd', function (e) { show(e.name, true); });
  map.on('overlayremove', function (e) { show(e.name, false); });
  document.querySelectorAll('#gg-legend section').forEach(function (s) {
    s.hidden = !(window.ggShown || []).includes(s.dataset.layer);
  });
  if (window.innerWidth < 600) document.querySelector('#gg-legend details').open = false;
  L.control.scale({ imperial: false }).addTo(map);
  map.attributionControl.setPrefix('gridgov · Leaflet');
  L.DomEvent.disableClickPropagation(document.getElementById('gg-legend'));
  L.DomEvent.disableScrollPropagation(document.getElementById('gg-legend'));
})({{ this._parent.get_name() }});
{% endmacro %}
"""
"""Shows a layer's legend section while the layer is on (a macro rendered after the map's own script)."""


def _panels(area: dict, period: Period, made_at: datetime, counts: dict, shown: list[str]) -> str:
    """The title box and the legend (one section per layer, shown while its layer is on), as HTML."""
    full_name = f"{area.get('parent_name') or ''}{area['name']}"
    title = (f'<div id="gg-title" class="gg-box"><h1>{html.escape(full_name)} 网格治理地图</h1>'
             f"<div>编码 {area['code']} · 小区 {counts['compounds']} 个 · 空白点 {counts['gaps']} 个 · "
             f"党组织 {counts['party']} 个</div>"
             f"<div>冷热点统计期间：{period.start:%Y-%m-%d} 至 {period.end - timedelta(days=1):%Y-%m-%d}</div>"
             f'<div id="gg-made">生成时间：{made_at:%Y-%m-%d %H:%M}（北京时间）</div>'
             "<div>仅含可公开的汇总数据：不含投诉内容、个人信息和联系电话。</div></div>")
    sections = []
    for layer, rows in _legend_entries().items():
        items = "".join(f'<div class="row"><i style="{style}"></i><span>{html.escape(name)}</span></div>'
                        for style, name in rows)
        sections.append(f'<section data-layer="{html.escape(layer)}"><h2>{html.escape(layer)}</h2>{items}</section>')
    legend = (f'<div id="gg-legend" class="gg-box"><details open><summary>图例</summary>{"".join(sections)}'
              "</details></div>")
    return f"<style>{PANEL_CSS}</style>{title}{legend}<script>window.ggShown = {json.dumps(shown)};</script>"


# --- inlining the libraries -----------------------------------------------------------------------------------

def _data_url(path: Path) -> str:
    kinds = {".png": "image/png", ".svg": "image/svg+xml", ".gif": "image/gif"}
    kind = kinds.get(path.suffix, "application/octet-stream")
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _read_asset(vendor_dir: Path, relative: str) -> str:
    path = vendor_dir / relative
    if not path.is_file():
        raise SetupError(f"缺少本地前端库 {relative}（在 {vendor_dir.name} 中）：请先运行 make setup 安装前端依赖")
    body = path.read_text(encoding="utf-8")
    body = re.sub(r"/[/*][#@] sourceMappingURL=[^\n*]*(\*/)?", "", body)
    if path.suffix == ".css":
        def inline(match: re.Match) -> str:
            target = (path.parent / match[2]).resolve()
            if not target.is_file():
                raise SetupError(f"本地前端库 {relative} 引用的文件 {match[2]} 不存在")
            return f'url("{_data_url(target)}")'
        body = re.sub(r"""url\((["']?)(?!data:|#)([^"')]+)\1\)""", inline, body)
    return body.replace("</script", "<\\/script").replace("</style", "<\\/style")


def _elements(root):
    yield root
    for child in root._children.values():
        yield from _elements(child)


def inline_assets(figure, vendor_dir: Path | None = None) -> list[str]:
    """Replace every element's default JS/CSS links under `figure` by the vendored copies inlined in its header;
    the names inlined, in order. A library without a local copy is a SetupError."""
    from branca.element import Element

    vendor_dir = vendor_dir or export_settings().vendor_dir
    wanted: dict[str, str] = {}
    for element in _elements(figure):
        for attribute in ("default_css", "default_js"):
            links = getattr(element, attribute, None)
            if not links:
                continue
            for name, _url in links:
                if name in NOT_NEEDED:
                    continue
                if name not in LOCAL_ASSETS:
                    raise SetupError(f"地图元素需要的前端库 {name} 没有本地副本，不能离线使用")
                wanted.setdefault(name, LOCAL_ASSETS[name])
            setattr(element, attribute, [])
    for name, relative in sorted(wanted.items(), key=lambda item: not item[1].endswith(".css")):
        tag = "style" if relative.endswith(".css") else "script"
        figure.header.add_child(Element(f"<{tag}>{_read_asset(vendor_dir, relative)}</{tag}>"), name=name)
    return list(wanted)


EXTERNAL_REFERENCE = re.compile(
    r"""<(?:script|link|img|iframe|source|video|audio|embed|object|image|use)\b[^>]*?\s(?:src|href|data|srcset)"""
    r"""\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//|url\(\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//|@import""",
    re.IGNORECASE)
"""What a browser would fetch from elsewhere: a tag's src/href to a URL with a host, a CSS url() or @import."""


def external_references(document: str) -> list[str]:
    """Every place in an HTML document that would make the browser fetch something off the file."""
    return [document[max(0, m.start() - 40):m.end() + 60] for m in EXTERNAL_REFERENCE.finditer(document)]


# --- the whole file -------------------------------------------------------------------------------------------

def build_map(conn: Connection, level: str, code: str, period: str | None = None, *,
              vendor_dir: Path | None = None, now: datetime | None = None) -> MapExport:
    """The offline HTML map of a street (`level` street, 9-digit code) or a district (6 digits); `period` of the
    hotspots as gis/analytics/periods.py reads it, the year up to today by default."""
    import folium
    from branca.element import MacroElement
    from folium.utilities import JsCode
    from jinja2 import Template

    started = time.perf_counter()
    area = resolve_area(conn, level, code)
    chosen = parse_period(period) if period else default_period()
    made_at = (now or datetime.now(LOCAL_TIME)).astimezone(LOCAL_TIME)
    compounds, gaps, organisations = _compounds(conn, area), _gaps(conn, area), _party(conn, area)
    hot_rows = _hotspots(conn, area, chosen)
    counts = {"compounds": len(compounds), "gaps": len(gaps),
              "party": len(organisations), "micro_grids": len(hot_rows),
              "hot_spots": sum((row["confidence_bin"] or 0) > 0 for row in hot_rows),
              "cold_spots": sum((row["confidence_bin"] or 0) < 0 for row in hot_rows)}

    fmap = folium.Map(location=[(area["south"] + area["north"]) / 2, (area["west"] + area["east"]) / 2],
                      zoom_start=14, tiles=None, max_zoom=19, min_zoom=8)
    fmap.get_root().title = f"{area['name']} 网格治理地图"
    layers = [_outline_layer(folium, _outlines(conn, area)), _hotspot_layer(folium, hot_rows),
              _mode_layer(folium, compounds), _gap_layer(folium, gaps), _party_layer(folium, organisations)]
    for layer in layers:
        layer.add_to(fmap)
    shown = [layer.layer_name for layer in layers if layer.show]
    # expanded on a desk, an icon on a phone
    folium.LayerControl(collapsed=JsCode("window.innerWidth < 600"), position="topright").add_to(fmap)
    fmap.fit_bounds([[area["south"], area["west"]], [area["north"], area["east"]]])
    figure = fmap.get_root()
    figure.html.add_child(folium.Element(_panels(area, chosen, made_at, counts, shown)))
    legend = MacroElement()
    legend._template = Template(LEGEND_SCRIPT)
    legend.add_to(fmap)
    inline_assets(figure, vendor_dir)
    document = figure.render()
    document = document.replace("<html>", '<html lang="zh-CN">', 1)
    leaks = external_references(document)
    if leaks:
        raise SetupError(f"导出的地图仍引用外部资源，已停止：{leaks[0]}")
    return MapExport(document, {k: area[k] for k in ("code", "name", "level", "parent_name")}, chosen.label,
                     made_at, counts, time.perf_counter() - started)
