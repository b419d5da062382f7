/* Buildings: vector tiles when the tiles service is there (a whole city stays fluid), with their numbers as
 * labels from 17 placed clear of the other buildings' footprints (labels.js); GeoJSON otherwise. */
import { api, bboxParam, has } from '../api.js';
import { tracked } from '../progress.js';
import { map, visible } from '../state.js';
import { DEFS } from './defs.js';
import { updateLabels } from './labels.js';
import { loadVector, makeVectorLayer } from './vector.js';

const LABEL_LIMIT = 3000;

export function makeBuildingLayer() {
  const entry = makeVectorLayer('building');
  entry.tiles = makeBuildingTiles();
  return entry;
}

function makeBuildingTiles() {
  if (!has('GET', '/tiles/{layer}/{z}/{x}/{y}.mvt') || !L.vectorGrid) return null;
  const style = DEFS.building.style;
  return L.vectorGrid.protobuf('/tiles/building/{z}/{x}/{y}.mvt', {
    rendererFactory: L.canvas.tile, interactive: false, minZoom: DEFS.building.minZoom, maxNativeZoom: 18,
    vectorTileLayerStyles: { building: Object.assign({ fill: true }, style) },
  });
}

/* A building's label: where its number goes, N号楼 or just N, and its footprint (labels.js keeps other labels
 * off it). The ring comes as offsets from the point in millionths of a degree. */
function labelItem([lon, lat, number, offsets]) {
  const ring = [];
  for (let i = 0; i + 1 < (offsets || []).length; i += 2) {
    ring.push(L.latLng(lat + offsets[i + 1] / 1e6, lon + offsets[i] / 1e6));
  }
  return { key: `${lon},${lat}`, latlng: L.latLng(lat, lon), text: `${number}号楼`, short: String(number),
    ring: ring.length >= 3 ? ring : null, ringBounds: ring.length >= 3 ? L.latLngBounds(ring) : null };
}

export async function loadBuildings(entry) {
  const zoom = map.getZoom();
  const on = visible.has('building') && zoom >= DEFS.building.minZoom;
  if (!entry.tiles) return loadVector(entry);
  if (!on) {
    map.removeLayer(entry.tiles);
    map.removeLayer(entry.labels);
    return;
  }
  entry.tiles.addTo(map);
  // labels need the numbers: fetch the points of the buildings in view only when labels show
  if (zoom < DEFS.building.label[0]) {
    map.removeLayer(entry.labels);
    return;
  }
  entry.labels.addTo(map);
  const view = map.getBounds();
  if (!(entry.loadedBounds && entry.loadedBounds.contains(view))) {
    const fetchBounds = view.pad(0.3);
    if (entry.controller) entry.controller.abort();
    entry.controller = new AbortController();
    const rows = await tracked(api(`/map/building-labels.json?bbox=${bboxParam(fetchBounds)}&limit=${LABEL_LIMIT}`
      + '&footprint=true', { signal: entry.controller.signal }));
    entry.labelItems = rows.map(labelItem);
    entry.loadedBounds = rows.length >= LABEL_LIMIT ? view : fetchBounds;
  }
  updateLabels(entry);
}

/* Resolves when the building tiles in view are drawn (or at once when none are loading). */
export function buildingTilesDrawn(entry) {
  const tiles = entry.tiles;
  if (!tiles || !map.hasLayer(tiles) || !tiles.isLoading()) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); tiles.off('load', done); resolve(); };
    const timer = setTimeout(done, 10000);
    tiles.on('load', done);
  });
}
