/* Party organisations drawn inside the unit each serves: community committees zoomed out, grid branches from
 * 14, compound branches from 15. */
import { api, bboxParam } from '../api.js';
import { el } from '../dom.js';
import { PARTY_KINDS } from '../names.js';
import { tracked } from '../progress.js';
import { map, renderer, visible } from '../state.js';
import { DEFS } from './defs.js';

export function makePartyLayer() {
  const group = L.geoJSON(null, {
    // drawn on the canvas: hundreds of DOM markers would slow every pan
    pointToLayer: (feature, latlng) => L.circleMarker(latlng, {
      renderer, radius: feature.properties.kind === 'community_committee' ? 8 : 6,
      color: '#ffd700', weight: 2, fillColor: '#d4000f', fillOpacity: 0.95, bubblingMouseEvents: false,
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
  const kinds = ['community_committee'];
  if (zoom >= 14) kinds.push('grid_branch');
  if (zoom >= 15) kinds.push('compound_branch');
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
