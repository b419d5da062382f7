/* Unit names and building numbers as labels, placed so that they hide nothing: no label overlaps another, and
 * from the zoom where the buildings' footprints are known (their numbers show) no label covers a building other
 * than its own. Labels are DOM tooltips (Chinese text renders best there); a move adds and removes only the ones
 * that enter or leave the view or move.
 *
 * Every layer's labels are placed together, in priority order (building numbers, then compounds, communities,
 * streets), whichever layer loaded last: each layer's loader calls updateLabels, which lays them all out again.
 * A building's number is written as N号楼 where that fits inside its footprint, else as N; a building too small
 * for either keeps its number only when it touches no other building and no other label. A compound's name tries
 * a few spots inside the compound, then is left out at that zoom. */
import { map, visible } from '../state.js';

const MAX_LABELS = 400;
const PRIORITY = ['building', 'compound', 'community', 'street'];
const CELL_PX = 64;
const MARGIN_PX = 1;

const entries = new Set();

/* A label's width and height in pixels, measured once per layer and text on a hidden element of its class (taken
 * out again at once, so nothing else finds it). */
const sizes = new Map();

function sizeOf(name, text) {
  const key = `${name}|${text}`;
  if (!sizes.has(key)) {
    const probe = document.createElement('div');
    probe.style.cssText = 'position:absolute;visibility:hidden;left:-9999px;top:0';
    probe.className = `leaflet-tooltip label ${name}`;
    probe.textContent = text;
    map.getContainer().appendChild(probe);
    sizes.set(key, { w: probe.offsetWidth, h: probe.offsetHeight });
    probe.remove();
  }
  return sizes.get(key);
}

/* Boxes [x0, y0, x1, y1] and polygons in container pixels, found by the grid cells they touch. */
class Grid {
  constructor() { this.cells = new Map(); }

  add(bounds, item) {
    for (const key of this.keys(bounds)) {
      if (!this.cells.has(key)) this.cells.set(key, []);
      this.cells.get(key).push(item);
    }
  }

  near(bounds) {
    const found = new Set();
    for (const key of this.keys(bounds)) for (const item of this.cells.get(key) || []) found.add(item);
    return found;
  }

  * keys([x0, y0, x1, y1]) {
    for (let i = Math.floor(x0 / CELL_PX); i <= Math.floor(x1 / CELL_PX); i += 1) {
      for (let j = Math.floor(y0 / CELL_PX); j <= Math.floor(y1 / CELL_PX); j += 1) yield `${i},${j}`;
    }
  }
}

const overlaps = (a, b) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];

function pointInPolygon([x, y], points) {
  let inside = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i, i += 1) {
    const [xi, yi] = points[i];
    const [xj, yj] = points[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function segmentsCross([ax, ay], [bx, by], [cx, cy], [dx, dy]) {
  const side = (px, py, qx, qy, rx, ry) => Math.sign((qx - px) * (ry - py) - (qy - py) * (rx - px));
  return side(ax, ay, bx, by, cx, cy) * side(ax, ay, bx, by, dx, dy) < 0
    && side(cx, cy, dx, dy, ax, ay) * side(cx, cy, dx, dy, bx, by) < 0;
}

const corners = ([x0, y0, x1, y1]) => [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];

function edgesCross(box, points) {
  const c = corners(box);
  for (let i = 0, j = points.length - 1; i < points.length; j = i, i += 1) {
    for (let k = 0; k < 4; k += 1) if (segmentsCross(points[j], points[i], c[k], c[(k + 1) % 4])) return true;
  }
  return false;
}

const vertexInBox = (box, points) => points.some(([x, y]) => x > box[0] && x < box[2] && y > box[1] && y < box[3]);

/* Whether a box and a footprint share any area (touching edges do not count). */
function boxHitsFootprint(box, footprint) {
  if (!overlaps(box, footprint.bounds)) return false;
  const p = footprint.points;
  return vertexInBox(box, p) || corners(box).some((c) => pointInPolygon(c, p)) || edgesCross(box, p);
}

/* Whether a box lies inside a footprint. */
function boxInside(box, footprint) {
  const p = footprint.points;
  return corners(box).every((c) => pointInPolygon(c, p)) && !vertexInBox(box, p) && !edgesCross(box, p);
}

function boundsOf(points) {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/* Where the labels placed so far and the buildings' footprints are, for one layout. */
class Layout {
  constructor(footprints) {
    this.labels = new Grid();
    this.buildings = new Grid();
    for (const footprint of footprints) this.buildings.add(footprint.bounds, footprint);
  }

  boxAt(name, text, point) {
    const { w, h } = sizeOf(name, text);
    return [point.x - w / 2, point.y - h / 2, point.x + w / 2, point.y + h / 2];
  }

  /* Whether a box is clear of every placed label and of every footprint but `own`. */
  free(box, own = null) {
    const padded = [box[0] - MARGIN_PX, box[1] - MARGIN_PX, box[2] + MARGIN_PX, box[3] + MARGIN_PX];
    for (const other of this.labels.near(padded)) if (overlaps(padded, other)) return false;
    for (const footprint of this.buildings.near(box)) {
      if (footprint !== own && boxHitsFootprint(box, footprint)) return false;
    }
    return true;
  }

  take(box) { this.labels.add(box, box); }
}

/* The buildings' footprints in container pixels, when the building layer shows them with their numbers. */
function footprintsInView(buildings, view) {
  if (!buildings || !visible.has('building') || map.getZoom() < buildings.def.label[0]) return [];
  const found = [];
  for (const item of buildings.labelItems || []) {
    if (!item.ring || !view.intersects(item.ringBounds)) continue;
    const points = item.ring.map((latlng) => { const p = map.latLngToContainerPoint(latlng); return [p.x, p.y]; });
    found.push({ item, points, bounds: boundsOf(points) });
  }
  return found;
}

function placeBuilding(layout, item, own) {
  const point = map.latLngToContainerPoint(item.latlng);
  const full = layout.boxAt('building', item.text, point);
  const short = item.short && item.short !== item.text ? layout.boxAt('building', item.short, point) : null;
  if (!own) return layout.free(full) ? { box: full, text: item.text } : null;
  const footprintArea = (own.bounds[2] - own.bounds[0]) * (own.bounds[3] - own.bounds[1]);
  const tries = [[full, item.text, boxInside(full, own)], [short, item.short, short && boxInside(short, own)],
    [full, item.text, (full[2] - full[0]) * (full[3] - full[1]) * 2 <= footprintArea], [short, item.short, true]];
  for (const [box, text, fits] of tries) {
    if (box && fits && layout.free(box, own)) return { box, text };
  }
  return null;
}

/* Spots to try for an area's name: its centre, then points on rings around it inside its outline. */
function areaSpots(item) {
  const spots = [map.latLngToContainerPoint(item.latlng)];
  const outline = item.outline ? item.outline() : null;
  if (!outline) return spots;
  const points = outline.map((latlng) => { const p = map.latLngToContainerPoint(latlng); return [p.x, p.y]; });
  const [x0, y0, x1, y1] = boundsOf(points);
  for (const t of [0.25, 0.4]) {
    for (let k = 0; k < 8; k += 1) {
      const angle = (k * Math.PI) / 4;
      const spot = L.point(spots[0].x + Math.cos(angle) * t * (x1 - x0), spots[0].y + Math.sin(angle) * t * (y1 - y0));
      if (pointInPolygon([spot.x, spot.y], points)) spots.push(spot);
    }
  }
  return spots;
}

function placeArea(layout, entry, item) {
  for (const [i, spot] of areaSpots(item).entries()) {
    const box = layout.boxAt(entry.name, item.text, spot);
    if (layout.free(box)) return { box, text: item.text, latlng: i ? map.containerPointToLatLng(spot) : item.latlng };
  }
  return null;
}

/* Where a layer's labels go, worked out once per load (buildings.js sets the building numbers' own). */
function labelItemsOf(entry) {
  if (!entry.labelItems) {
    const items = [];
    entry.group.eachLayer((layer) => {
      if (layer._labelText) {
        items.push({ key: String(layer.feature.id ?? L.stamp(layer)), latlng: layer.getBounds().getCenter(),
          text: layer._labelText, outline: () => outerRing(layer) });
      }
    });
    entry.labelItems = items;
  }
  return entry.labelItems;
}

function outerRing(layer) {
  let rings = layer.getLatLngs();
  while (Array.isArray(rings[0]) && Array.isArray(rings[0][0])) rings = rings[0];
  return Array.isArray(rings[0]) ? rings[0] : rings;
}

function shows(entry, zoom) {
  const def = entry.def;
  return Boolean(def.label && visible.has(entry.name) && zoom >= def.label[0] && zoom <= def.label[1]);
}

/* The labels a layer should show now: key -> {latlng, text}. */
function wantedLabels(entry, layout, view, owners) {
  const wanted = new Map();
  if (!shows(entry, map.getZoom())) return wanted;
  for (const item of labelItemsOf(entry)) {
    if (wanted.size >= MAX_LABELS) break;
    if (!view.contains(item.latlng)) continue;
    const spot = entry.name === 'building' ? placeBuilding(layout, item, owners.get(item)) : placeArea(layout, entry, item);
    if (!spot) continue;
    layout.take(spot.box);
    wanted.set(item.key, { latlng: spot.latlng || item.latlng, text: spot.text });
  }
  return wanted;
}

function applyLabels(entry, wanted) {
  const shown = entry.shownLabels || (entry.shownLabels = new Map());
  for (const [key, tooltip] of shown) {
    const item = wanted.get(key);
    if (!item || item.text !== tooltip._labelText || !item.latlng.equals(tooltip.getLatLng())) {
      entry.labels.removeLayer(tooltip);
      shown.delete(key);
    }
  }
  for (const [key, item] of wanted) {
    if (shown.has(key)) continue;
    const tooltip = L.tooltip({ permanent: true, direction: 'center', className: `label ${entry.name}`,
      interactive: false }).setLatLng(item.latlng).setContent(document.createTextNode(item.text));
    tooltip._labelText = item.text;
    entry.labels.addLayer(tooltip);
    shown.set(key, tooltip);
  }
}

/* Lays out the labels of every layer that has them again, after `entry` loaded or the view moved. */
export function updateLabels(entry) {
  entries.add(entry);
  const view = map.getBounds().pad(0.1);
  const rank = (e) => (PRIORITY.includes(e.name) ? PRIORITY.indexOf(e.name) : PRIORITY.length);
  const ordered = [...entries].sort((a, b) => rank(a) - rank(b));
  const footprints = footprintsInView(ordered.find((e) => e.name === 'building'), view);
  const layout = new Layout(footprints);
  const owners = new Map(footprints.map((footprint) => [footprint.item, footprint]));
  for (const each of ordered) applyLabels(each, wantedLabels(each, layout, view, owners));
}
