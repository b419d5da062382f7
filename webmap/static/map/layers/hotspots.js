/* Hotspots: complaint rates per micro-grid or grid (per 1,000 households) with the significant hot and cold
 * spots of Getis-Ord Gi* outlined, for the period of the filters (the last year by default). */
import { api, has } from '../api.js';
import { emit, on } from '../bus.js';
import { $ } from '../dom.js';
import { tracked } from '../progress.js';
import { filters, hotspotLevel, hotspotsOn, map, plannerOn } from '../state.js';
import { areaEntry, declareLegend, rampEntry } from './legend-entries.js';

/* confidence class -> [fill colour, legend text]: ColorBrewer's diverging RdBu, safe for red-green colour-blind
 * readers: hot spots red, cold spots blue, 99/95/90% from dark to light. A significant unit is outlined in its
 * side's darkest hue; the others are filled by complaint rate in greys, which no class uses. */
export const HOT_CLASSES = {
  hot_99: ['#b2182b', '热点 99%'], hot_95: ['#ef8a62', '热点 95%'], hot_90: ['#fddbc7', '热点 90%'],
  cold_99: ['#2166ac', '冷点 99%'], cold_95: ['#67a9cf', '冷点 95%'], cold_90: ['#d1e5f0', '冷点 90%'],
};
const SIDE_OUTLINE = { hot: '#67001f', cold: '#053061' };
const SHADES = ['#fafafa', '#cccccc', '#b3b3b3', '#999999', '#808080']; // clear of the 90% classes' lightness

let layer = null;

function periodParam() {
  const day = (d) => d.toISOString().slice(0, 10);
  const today = new Date();
  const yearAgo = new Date(today.getTime() - 365 * 86400000);
  return `${filters.from || day(yearAgo)}..${filters.to || day(today)}`;
}

function hotClass(p) {
  const bin = Number(p.confidence_bin);
  if (!bin) return '';
  const level = { 3: '99', 2: '95', 1: '90' }[Math.min(3, Math.abs(bin))];
  return `${bin > 0 ? 'hot' : 'cold'}_${level}`;
}

function rateColour(rate, max) {
  const t = max > 0 ? Math.min(1, rate / max) : 0;
  return SHADES[Math.min(SHADES.length - 1, Math.floor(t * SHADES.length))];
}

const rateOf = (p) => p.rate_per_1000 ?? p.complaints ?? 0;

/* How a unit is drawn: by its Gi* class when significant, else by its complaint rate against the highest `max`. */
export function hotspotStyle(properties, max) {
  const cls = hotClass(properties);
  if (!cls) return { color: '#9e9e9e', weight: 0.5, fillColor: rateColour(rateOf(properties), max), fillOpacity: 0.6 };
  return { color: SIDE_OUTLINE[cls.split('_')[0]], weight: 1.5, fillColor: HOT_CLASSES[cls][0], fillOpacity: 0.85 };
}

declareLegend({
  id: 'hotspots', title: '冷热点（Gi*）',
  shown: () => Boolean(layer && map.hasLayer(layer)),
  entries: () => [
    ...Object.entries(HOT_CLASSES).map(([cls, [, text]]) => areaEntry(cls, hotspotStyle({
      confidence_bin: (cls.startsWith('hot') ? 1 : -1) * { 99: 3, 95: 2, 90: 1 }[cls.slice(-2)] }, 1), text)),
    rampEntry('rate', SHADES, '不显著：每千户投诉率（浅→深）'),
  ],
});

/* Draws the hotspots when the hotspot switch or the planners' overlay is on; removes them otherwise. */
export async function loadHotspots() {
  const note = $('#hotspot-note');
  if (layer) map.removeLayer(layer);
  if (!(hotspotsOn() || plannerOn())) { note.textContent = ''; emit('legend:change'); return; }
  if (!has('GET', '/analytics/hotspots')) { note.textContent = '本部署未提供热点分析服务。'; return; }
  const params = new URLSearchParams({ level: hotspotLevel(), format: 'geojson', value: 'rate',
    period: periodParam() });
  if (filters.category.length) params.set('categories', filters.category.join(','));
  try {
    const collection = await tracked(api(`/analytics/hotspots?${params}`));
    const features = collection.features || [];
    const max = Math.max(0, ...features.map((f) => rateOf(f.properties)));
    if (layer) map.removeLayer(layer);
    layer = L.geoJSON(collection, {
      interactive: false, style: (feature) => hotspotStyle(feature.properties, max),
    }).addTo(map);
    emit('legend:change');
    const hot = features.filter((f) => hotClass(f.properties).startsWith('hot')).length;
    const cold = features.filter((f) => hotClass(f.properties).startsWith('cold')).length;
    note.textContent = `${periodParam()}：${features.length} 个统计单元，` +
      `显著热点 ${hot} 个（红）、冷点 ${cold} 个（蓝），其余按每千户投诉率灰度着色。`;
    note.dataset.units = features.length;
  } catch (error) {
    note.textContent = `热点分析失败：${error.message}`;
  }
}

/* The hotspot switch and level; hotspots follow applied filters and the planners' overlay. */
export function initHotspots({ level }) {
  if (level) $('#hotspot-level').value = level;
  const changed = () => { loadHotspots(); emit('overlay:change'); };
  $('#hotspot-toggle').addEventListener('change', changed);
  $('#hotspot-level').addEventListener('change', changed);
  // (clearing the filters leaves the hotspots as they are, as it always has)
  on('filters:change', ({ applied }) => { if (applied) loadHotspots(); });
  on('planner:change', () => loadHotspots());
}
