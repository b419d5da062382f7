/* Party organisations drawn inside the unit each serves: community committees zoomed out, grid branches from
 * 14, compound branches from 15, each kind with its own marker size (the legend's). */
import { api, bboxParam } from '../api.js';
import { el } from '../dom.js';
import { PARTY_KINDS } from '../names.js';
import { tracked } from '../progress.js';
import { map, renderer, visible } from '../state.js';
import { DEFS } from './defs.js';
import { dotEntry } from './legend-entries.js';

/* Each kind's marker: party red ringed in gold, larger for a higher level; the zoom it shows from. */
const MARKER = { color: '#ffd700', weight: 2, fillColor: '#d4000f', fillOpacity: 0.95 };
const KIND_MARKERS = {
  community_committee: { radius: 8, fromZoom: 0 }, grid_branch: { radius: 6, fromZoom: 14 },
  compound_branch: { radius: 4.5, fromZoom: 15 },
};
const markerOf = (kind) => Object.assign({ radius: (KIND_MARKERS[kind] || KIND_MARKERS.grid_branch).radius }, MARKER);
const kindsAt = (zoom) => Object.keys(KIND_MARKERS).filter((kind) => zoom >= KIND_MARKERS[kind].fromZoom);

DEFS.party.legend = (zoom) => kindsAt(zoom).map((kind) => dotEntry(`party:${kind}`, markerOf(kind), PARTY_KINDS[kind]));

export function makePartyLayer() {
  const group = L.geoJSON(null, {
    // drawn on the canvas: hundreds of DOM markers would slow every pan
    pointToLayer: (feature, latlng) => L.circleMarker(latlng, {
      renderer, ...markerOf(feature.properties.kind), bubblingMouseEvents: false,
    }).bindTooltip(feature.properties.name).bindPopup(() => el('div', {},
      el('strong', {}, feature.properties.name), el('br'),
      `${PARTY_KINDS[feature.properties.kind] || feature.properties.kind} · 党员 ${feature.properties.member_count} 名`)),
  });
  return { name: 'party', def: DEFS.party, group, loadedBounds: null };
}

export async function loadParty(entry) {
  const zoom = map.getZoom();
  if (!visible.has('party') || zoom < DEFS.party.minZoom) { map.removeLayer(entry.group); return; }
  entry.group.addTo(map);
  const kinds = kindsAt(zoom);
  const view = map.getBounds();
  const key = kinds.join(',');
  if (entry.loadedBounds && entry.loadedBounds.contains(view) && entry.key === key) return;
  const fetchBounds = view.pad(0.3);
  if (entry.controller) entry.controller.abort();
  entry.controller = new AbortController();
  const collection = await tracked(api(`/map/party-organisations.geojson?bbox=${bboxParam(fetchBounds)}&kinds=${key}`,
    { signal: entry.controller.signal }));
  entry.group.clearLayers();
  entry.group.addData(collection);
  entry.loadedBounds = fetchBounds;
  entry.key = key;
}
