/* Integrity faults of the layers (what `gridgov check` reports) for administrators: each fault drawn where it is
 * — the part outside the parent, an overlap, a gap, or a point for an invalid shape, an orphan or duplicate code —
 * coloured by kind, with the kind, the features involved and the reason in its popup. Fetched once per session
 * when an administrator switches the layer on; the switch shows for administrators only (panels/layer-list.js). */
import { api, session } from '../api.js';
import { on } from '../bus.js';
import { el } from '../dom.js';
import { FAULT_KINDS } from '../names.js';
import { tracked } from '../progress.js';
import { refresh } from '../redraw.js';
import { map, visible } from '../state.js';
import { DEFS } from './defs.js';

const POINT_KINDS = new Set(['invalid_geometry', 'orphan_code', 'duplicate_code']);
const colourOf = (kind) => (FAULT_KINDS[kind] || ['', '#e6007e'])[1];
let current = null; // the layer's entry, for its legend

/* Leaflet path options of a fault kind: areas filled in the kind's colour, points as rings around a dot. */
export function faultStyle(kind) {
  return POINT_KINDS.has(kind)
    ? { color: '#ffffff', weight: 2, fillColor: colourOf(kind), fillOpacity: 1, radius: 7 }
    : { color: colourOf(kind), weight: 2.5, fillColor: colourOf(kind), fillOpacity: 0.45 };
}

function popup(p) {
  return el('div', { class: 'fault-popup' },
    el('strong', {}, p.kind_zh), el('br'),
    `${p.layer_zh} ${p.code}：${p.message_zh}`,
    el('ul', {}, ...p.involved.map((item) => el('li', {}, `${item.layer_zh} ${item.code}`))));
}

export function makeIntegrityLayer() {
  const group = L.geoJSON(null, {
    style: (feature) => faultStyle(feature.properties.kind),
    pointToLayer: (feature, latlng) => L.circleMarker(latlng, faultStyle(feature.properties.kind)),
    onEachFeature: (feature, layer) => layer.bindTooltip(`${feature.properties.kind_zh}：` +
      `${feature.properties.layer_zh} ${feature.properties.code}`).bindPopup(() => popup(feature.properties)),
  });
  const entry = { name: 'integrity', def: DEFS.integrity, group, loadedFor: null, kinds: null, count: null };
  on('session:change', () => { entry.loadedFor = null; refresh(); });
  current = entry;
  return entry;
}

export async function loadIntegrity(entry) {
  if (session.role !== 'admin' || !visible.has('integrity')) {
    map.removeLayer(entry.group);
    if (session.role !== 'admin') { entry.group.clearLayers(); entry.loadedFor = null; entry.kinds = null; }
    return;
  }
  entry.group.addTo(map);
  if (entry.loadedFor === session.token) return;
  const collection = await tracked(api('/map/integrity.geojson'));
  entry.group.clearLayers();
  entry.group.addData(collection);
  entry.loadedFor = session.token;
  entry.count = collection.features.length;
  entry.kinds = [...new Set(collection.features.map((f) => f.properties.kind))];
}

/* The legend (panels/legend.js): the kinds found, or a line saying there are none; nothing for other roles. */
DEFS.integrity.legend = () => {
  if (session.role !== 'admin') return [];
  const kinds = current && current.kinds;
  if (kinds && !kinds.length) {
    return [{ key: 'fault:none', text: '未发现数据完整性问题',
      swatch: { kind: 'area', color: '#27ae60', weight: 1, dash: false, fill: null, fillOpacity: 0 } }];
  }
  return Object.keys(FAULT_KINDS).filter((kind) => !kinds || kinds.includes(kind)).map((kind) => {
    const style = faultStyle(kind);
    const swatch = POINT_KINDS.has(kind)
      ? { kind: 'dot', color: '#555555', weight: 2, fill: style.fillColor, fillOpacity: 1, radius: 6 }
      : { kind: 'area', color: style.color, weight: style.weight, dash: false, fill: style.fillColor,
        fillOpacity: style.fillOpacity };
    return { key: `fault:${kind}`, text: FAULT_KINDS[kind][0], swatch };
  });
};
