/* The complaint heat map, drawn from the same marks as the clusters (single complaints or counts per unit). */
import { $ } from '../dom.js';
import { refresh } from '../redraw.js';
import { map } from '../state.js';
import { declareLegend, rampEntry } from './legend-entries.js';

/* The heat map's colours from sparse to dense (Leaflet.heat's own stops, named so the legend shows the same). */
const GRADIENT = { 0.4: 'blue', 0.6: 'cyan', 0.7: 'lime', 0.8: 'yellow', 1: 'red' };

let heat = null;

declareLegend({
  id: 'heat', title: '投诉热力图', shown: () => heatShown(),
  entries: () => [rampEntry('heat', Object.values(GRADIENT), '投诉密度（疏→密）')],
});

export function hideHeat() {
  if (heat) map.removeLayer(heat);
}

export const heatShown = () => Boolean(heat && map.hasLayer(heat));

export function showHeat(marks) {
  const points = marks.map((m) => [m.lat, m.lon, m.count]);
  // counts per unit weigh their spot: scale so that the busiest tenth of the spots saturates
  const counts = marks.map((m) => m.count).sort((a, b) => a - b);
  const max = Math.max(1, counts.length ? counts[Math.floor(counts.length * 0.9)] : 1);
  if (!heat) heat = L.heatLayer(points, { radius: 18, blur: 16, maxZoom: 16, max, gradient: GRADIENT });
  else { heat.setOptions({ max }); heat.setLatLngs(points); }
  heat.addTo(map);
}

/* The heat map's switch redraws the complaints, which draw the heat map when it is on. */
export function initHeat() {
  $('#heat-toggle').addEventListener('change', () => refresh());
}
