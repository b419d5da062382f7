/* The pyramid's boundaries as GeoJSON on the canvas: streets and communities fetched once for the whole city,
 * grids, micro-grids, compounds (and buildings without vector tiles) for the view. */
import { api, bboxParam } from '../api.js';
import { on } from '../bus.js';
import { tracked } from '../progress.js';
import { map, renderer, visible } from '../state.js';
import { compoundStyle, DEFS } from './defs.js';
import { updateLabels } from './labels.js';

function labelFor(name, feature) {
  const p = feature.properties;
  if (name === 'building') return p.number ? `${p.number}号楼` : p.name;
  return p.name;
}

export function makeVectorLayer(name) {
  const def = DEFS[name];
  const group = L.geoJSON(null, {
    interactive: false, style: def.style, renderer,
    onEachFeature: (feature, layer) => {
      if (def.label) layer._labelText = labelFor(name, feature);
    },
  });
  const entry = { name, def, group, loadedBounds: null, loadedKey: '', controller: null, labels: L.layerGroup() };
  // the planners' overlay fills the compounds by service gap
  if (name === 'compound') on('planner:change', () => group.setStyle(compoundStyle));
  return entry;
}

/* The view with a margin on each side of 30 % of the map's size, and at least MIN_MARGIN_PX: on a phone's
 * narrow screen 30 % is about 120 px, so almost every sideways pan would leave what was fetched. */
const MIN_MARGIN_PX = 300;

function paddedView() {
  const size = map.getSize();
  const dx = Math.max(size.x * 0.3, MIN_MARGIN_PX);
  const dy = Math.max(size.y * 0.3, MIN_MARGIN_PX);
  return L.latLngBounds(map.containerPointToLatLng([-dx, size.y + dy]),
    map.containerPointToLatLng([size.x + dx, -dy]));
}

/* Features handed over already fetched (the streets, fetched with the configuration at the start). */
export function addWhole(entry, collection) {
  entry.group.addData(collection);
  entry.loadedKey = 'all';
}

export async function loadVector(entry) {
  const { name, def } = entry;
  const zoom = map.getZoom();
  if (!(visible.has(name) && zoom >= (def.minZoom || 0))) {
    map.removeLayer(entry.group);
    map.removeLayer(entry.labels);
    return;
  }
  entry.group.addTo(map);
  entry.labels.addTo(map);
  const view = map.getBounds();
  // features loaded two zooms out are many times more than the view needs, and every redraw pays for them
  const reusable = entry.loadedBounds && entry.loadedBounds.contains(view) && zoom - entry.loadedZoom < 2;
  if (def.whole ? entry.loadedKey === 'all' : reusable) {
    updateLabels(entry);
    return;
  }
  const fetchBounds = paddedView();
  const limit = def.limit || 10000;
  const url = def.whole ? `/layers/${name}.geojson`
    : `/layers/${name}.geojson?bbox=${bboxParam(fetchBounds)}&limit=${limit}`;
  if (entry.controller) entry.controller.abort();
  entry.controller = new AbortController();
  const collection = await tracked(api(url, { signal: entry.controller.signal }));
  entry.group.clearLayers();
  entry.group.addData(collection);
  entry.labelItems = null;
  entry.loadedKey = def.whole ? 'all' : '';
  entry.loadedBounds = collection.features.length >= limit ? view : fetchBounds;
  entry.loadedZoom = zoom;
  entry.count = collection.features.length;
  updateLabels(entry);
}
