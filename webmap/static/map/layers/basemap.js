/* The city's own base map (底图), beneath every other layer: served by the app from its local MBTiles or PMTiles
 * file (GET /basemap.json, then /basemap/{z}/{x}/{y}), so no request leaves the origin. Vector tiles are drawn by
 * Leaflet.VectorGrid in soft colours that do not fight the thematic layers — a light grey city, white roads,
 * blue water, green parks — and their names by a second tile layer that writes grey text on a canvas per tile
 * (VectorGrid draws no text). Raster tiles are an ordinary L.tileLayer. Without a configured file the answer is
 * 204 and the map simply has no base map. */
import { api } from '../api.js';
import { status } from '../dom.js';
import { map, visible } from '../state.js';
import { DEFS } from './defs.js';
import { areaEntry, lineEntry } from './legend-entries.js';

const COLOURS = {
  city: '#e4e2dd', outline: '#bdb9b1', park: '#d5e5cc', plaza: '#ebe8e1', other: '#dedbd5',
  water: '#b3d0ea', waterEdge: '#9fc0de', road: '#ffffff', minor: '#f7f6f3',
};
const LABEL_FONT = '"Noto Sans CJK SC", "Noto Sans SC", "Microsoft YaHei", sans-serif';

/* Road widths in pixels by class, from zoom 10 to 17. */
const ROAD_WIDTHS = {
  primary: [1.5, 2, 2.5, 3.5, 5, 7, 9, 12],
  secondary: [0, 0, 1.5, 2.5, 3.5, 5, 6.5, 9],
  tertiary: [0, 0, 0, 1.5, 2, 3, 4.5, 6],
  minor: [0, 0, 0, 0, 0, 1.5, 2.5, 3.5],
};

function roadStyle(properties, zoom) {
  const widths = ROAD_WIDTHS[properties.class] || ROAD_WIDTHS.minor;
  const last = widths.length - 1;
  // past zoom 17 the roads keep widening, as a street does when the map comes closer
  const weight = widths[Math.max(0, Math.min(last, zoom - 10))] * 1.6 ** Math.max(0, zoom - 10 - last);
  if (!weight) return [];
  return { stroke: true, fill: false, color: properties.class === 'minor' ? COLOURS.minor : COLOURS.road,
    weight, opacity: 1, lineCap: 'round', lineJoin: 'round' };
}

const SHAPE_STYLES = {
  district: { fill: true, fillColor: COLOURS.city, fillOpacity: 1, stroke: true, color: COLOURS.outline, weight: 1.5 },
  landuse: (p) => ({ fill: true, stroke: false, fillOpacity: 1,
    fillColor: p.kind === 'park' ? COLOURS.park : p.kind === 'plaza' ? COLOURS.plaza : COLOURS.other }),
  water: { fill: true, fillColor: COLOURS.water, fillOpacity: 1, stroke: true, color: COLOURS.waterEdge, weight: 0.5 },
  roads: roadStyle,
  labels: [], // written by the label layer
};

/* The legend (panels/legend.js): the city, its land use and water as SHAPE_STYLES fill them, and the road
 * classes drawn at this zoom, white on the city's grey as the map draws them; a raster base map is one line. */
const ROAD_NAMES = { primary: '主干道', secondary: '次干道', tertiary: '支路', minor: '小区间道路' };
let format = null; // the served file's tile format, once the base map's layer is made

DEFS.basemap.legend = (zoom) => {
  if (format !== 'pbf') return [areaEntry('basemap:raster', { color: DEFS.basemap.colour, fill: false }, '底图（栅格瓦片）')];
  const roads = Object.keys(ROAD_NAMES).map((cls) => [cls, roadStyle({ class: cls }, zoom)])
    .filter(([, style]) => style.weight)
    .map(([cls, style]) => lineEntry(`basemap:road:${cls}`, style, ROAD_NAMES[cls], COLOURS.city));
  return [
    areaEntry('basemap:city', SHAPE_STYLES.district, '城区'),
    areaEntry('basemap:park', SHAPE_STYLES.landuse({ kind: 'park' }), '公园绿地'),
    areaEntry('basemap:plaza', SHAPE_STYLES.landuse({ kind: 'plaza' }), '广场'),
    areaEntry('basemap:other', SHAPE_STYLES.landuse({ kind: 'school' }), '学校、医院等用地'),
    areaEntry('basemap:water', SHAPE_STYLES.water, '河流、湖泊'),
    ...roads,
  ];
};

/* Which names show at a zoom: the thematic layers already name streets up to 13 and communities 13-15. */
const LABELS = {
  district: { from: 10, to: 12, size: 17, colour: '#8c8880', weight: 'bold' },
  street: { from: 14, to: 15, size: 14, colour: '#8f8b84', weight: 'bold' },
  community: { from: 16, to: 30, size: 12, colour: '#98948c', weight: 'normal' },
  road: { from: 15, to: 30, size: 11, colour: '#9a968f', weight: 'normal' },
  water: { from: 13, to: 30, size: 12, colour: '#5f8db8', weight: 'normal' },
};

function labelShown(p, zoom) {
  const kind = LABELS[p.kind];
  if (!kind || zoom < kind.from || zoom > kind.to) return false;
  if (p.kind === 'road' && p.rank === 4) return zoom >= 14; // main roads are named a zoom earlier
  return true;
}

function drawLabels(canvas, tile, zoom, size) {
  const layer = tile.layers.labels;
  if (!layer) return 0;
  const ratio = window.devicePixelRatio || 1;
  const context = canvas.getContext('2d');
  context.scale(ratio, ratio);
  context.textAlign = 'center';
  context.textBaseline = 'middle';
  context.lineJoin = 'round';
  const scale = size.x / layer.extent;
  let drawn = 0;
  for (const feature of layer.features) {
    const p = feature.properties;
    if (!labelShown(p, zoom)) continue;
    const kind = LABELS[p.kind];
    const point = feature.geometry[0][0];
    context.save();
    context.translate(point.x * scale, point.y * scale);
    if (p.angle) context.rotate((p.angle * Math.PI) / 180);
    context.font = `${kind.weight} ${kind.size}px ${LABEL_FONT}`;
    context.strokeStyle = 'rgba(255, 255, 255, 0.9)';
    context.lineWidth = 3;
    context.strokeText(p.name, 0, 0);
    context.fillStyle = kind.colour;
    context.fillText(p.name, 0, 0);
    context.restore();
    drawn += 1;
  }
  return drawn;
}

/* Each tile is fetched and decoded once for both the shapes and the names (a few hundred kept). */
const decoded = new Map();
const DECODED_KEPT = 300;

function sharedTile(layer, coords) {
  const key = `${coords.z}/${coords.x}/${coords.y}`;
  let found = decoded.get(key);
  if (!found) {
    found = L.VectorGrid.Protobuf.prototype._getVectorTilePromise.call(layer, coords);
    decoded.set(key, found);
    if (decoded.size > DECODED_KEPT) decoded.delete(decoded.keys().next().value);
  }
  return found;
}

/* Beyond the file's last zoom, a tile is its ancestor's features enlarged into its own square, so roads keep
 * their widths and names their size (Leaflet's own over-zoom would scale the drawn canvas up). */
function enlarged(tile, factor, dx, dy) {
  const layers = {};
  for (const [name, layer] of Object.entries(tile.layers)) {
    const shift = (point) => ({ x: point.x * factor - dx * layer.extent, y: point.y * factor - dy * layer.extent });
    layers[name] = { extent: layer.extent, length: layer.features.length,
      features: layer.features.map((feature) => ({ type: feature.type, id: feature.id,
        properties: feature.properties, geometry: feature.geometry.map((ring) => ring.map(shift)) })) };
  }
  return { layers };
}

function tileAt(layer, coords) {
  const native = layer.options.lastNativeZoom;
  if (coords.z <= native) return sharedTile(layer, coords);
  const factor = 2 ** (coords.z - native);
  const parent = { x: Math.floor(coords.x / factor), y: Math.floor(coords.y / factor), z: native };
  return sharedTile(layer, parent).then((tile) => enlarged(tile, factor, coords.x - parent.x * factor,
    coords.y - parent.y * factor));
}

function vectorLayers(url, options) {
  const Shapes = L.VectorGrid.Protobuf.extend({ _getVectorTilePromise(coords) { return tileAt(this, coords); } });
  const Labels = L.VectorGrid.Protobuf.extend({
    _getVectorTilePromise(coords) { return tileAt(this, coords); },
    createTile(coords, done) {
      const size = this.getTileSize();
      const ratio = window.devicePixelRatio || 1;
      const canvas = L.DomUtil.create('canvas', 'leaflet-tile basemap-labels');
      canvas.width = size.x * ratio;
      canvas.height = size.y * ratio;
      canvas.style.width = `${size.x}px`;
      canvas.style.height = `${size.y}px`;
      this._getVectorTilePromise(coords).then((tile) => {
        canvas.dataset.labels = String(drawLabels(canvas, tile, coords.z, size));
        done(null, canvas);
      }, (error) => done(error, canvas));
      return canvas;
    },
  });
  const shapes = new Shapes(url, Object.assign({ rendererFactory: L.canvas.tile, interactive: false,
    vectorTileLayerStyles: SHAPE_STYLES, zIndex: 1 }, options));
  const names = new Labels(url, Object.assign({ interactive: false, zIndex: 2 }, options));
  return [shapes, names];
}

/* The configured base map's TileJSON, or null when there is none (or it cannot be read: the reason shows). */
export async function fetchBasemap() {
  try {
    return await api('/basemap.json');
  } catch (error) {
    status(`底图不可用：${error.message}`);
    return null;
  }
}

/* The layer entry of the base map described by `tilejson`: its tile layers, added to the map while it is
 * switched on. */
export function makeBasemapLayer(tilejson) {
  const [west, south, east, north] = tilejson.bounds || [-180, -85, 180, 85];
  const bounds = L.latLngBounds([south, west], [north, east]);
  const options = { minNativeZoom: tilejson.minzoom, maxZoom: 22, bounds };
  const url = tilejson.tiles[0];
  // vector tiles beyond the last zoom are enlarged from their ancestors (tileAt), raster tiles by Leaflet
  const parts = tilejson.format === 'pbf'
    ? vectorLayers(url, Object.assign({ lastNativeZoom: tilejson.maxzoom }, options))
    : [L.tileLayer(url, Object.assign({ zIndex: 1, maxNativeZoom: tilejson.maxzoom }, options))];
  parts[0].options.attribution = tilejson.attribution;
  format = tilejson.format;
  return { name: 'basemap', tilejson, parts, group: L.layerGroup(parts) };
}

export function loadBasemap(entry) {
  if (visible.has('basemap')) entry.group.addTo(map);
  else map.removeLayer(entry.group);
}

/* Resolves when the base map's tiles in view are drawn (at once when none are loading). */
export function basemapDrawn(entry) {
  const loading = entry.parts.filter((part) => map.hasLayer(part) && part.isLoading());
  return Promise.all(loading.map((part) => new Promise((resolve) => {
    const done = () => { clearTimeout(timer); part.off('load', done); resolve(); };
    const timer = setTimeout(done, 10000);
    part.on('load', done);
  })));
}
