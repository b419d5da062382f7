/* The planners' overlay: compounds filled by management mode with service gaps stressed, the hotspots, and the
 * coverage figures of the compounds in view (the map's legend, panels/legend.js, lists their styles). */
import { api, bboxParam } from '../api.js';
import { emit, on } from '../bus.js';
import { $, el } from '../dom.js';
import { DEFS } from '../layers/defs.js';
import { areaEntry, declareLegend } from '../layers/legend-entries.js';
import { MODE_NAMES } from '../names.js';
import { refresh } from '../redraw.js';
import { map, plannerOn } from '../state.js';
import { showLayer } from './layer-list.js';

const pct = (a, b) => (b ? `${(100 * a / b).toFixed(1)}%` : '—');

/* The figures of the compounds in view come from the API, by the programme's one definition (/analytics/programme
 * with the view's box: the compounds whose point on surface is in view); the gap compounds (空白点) are drawn from
 * /analytics/gaps.geojson, by the same rule. */
let asked = 0;
let gapLayer = null;
const GAP_STYLE = { color: '#b71c1c', weight: 3, dashArray: '6 4', fill: false };

/* The legend (panels/legend.js): the gap compounds' outline, while they are drawn, with how many there are. */
declareLegend({
  id: 'gaps', title: '服务空白点',
  shown: () => Boolean(gapLayer && map.hasLayer(gapLayer) && gapLayer.getLayers().length),
  entries: () => [areaEntry('gap_compound', GAP_STYLE,
    `服务空白点 ${gapLayer.getLayers().length} 个：无物业管理的小区，以及未纳入物业管理的老旧小区`)],
});

async function drawGaps(show) {
  if (!show) {
    if (gapLayer) { gapLayer.remove(); gapLayer = null; emit('legend:change'); }
    return;
  }
  if (gapLayer) return;
  gapLayer = window.L.geoJSON(null, { interactive: false, style: GAP_STYLE }).addTo(map);
  const layer = gapLayer;
  try {
    layer.addData(await api('/analytics/gaps.geojson'));
    $('#coverage-figures').dataset.gapsDrawn = String(layer.getLayers().length);
    emit('legend:change');
  } catch (error) { /* the figures' box says why */ }
}

async function updateCoverage() {
  const box = $('#coverage-figures');
  drawGaps(plannerOn());
  if (!plannerOn()) { box.replaceChildren(); return; }
  if (map.getZoom() < DEFS.compound.minZoom) {
    box.replaceChildren(el('p', { class: 'hint' }, '放大地图以计算视野内的覆盖率。'));
    return;
  }
  const ask = ++asked;
  const bbox = bboxParam(map.getBounds());
  let body;
  try {
    body = await api(`/analytics/programme?bbox=${bbox}`);
  } catch (error) {
    box.replaceChildren(el('p', { class: 'hint warn' }, error.message));
    return;
  }
  if (ask !== asked) return;
  const f = Object.fromEntries(body.rows.map((row) => [row.key, row]));
  const modes = body.meta.modes;
  const area = modes.reduce((sum, m) => sum + m.floor_area_m2, 0);
  const share = (row) => (row.value === null ? '—' : `${(100 * row.value).toFixed(1)}%`);
  box.replaceChildren(
    el('h4', {}, '视野内覆盖情况'),
    el('p', { id: 'coverage-summary', 'data-bbox': bbox },
      `小区 ${f.gap_compounds.denominator} 个；专业化物业覆盖率（按建筑面积）${share(f.professional_area)}；`,
      `老旧小区 ${f.old_estate_coverage.denominator} 个，物业管理覆盖 ${share(f.old_estate_coverage)}；`,
      `服务空白 ${f.gap_compounds.value} 个。`),
    el('table', {},
      el('tr', {}, el('th', {}, '模式'), el('th', {}, '小区'), el('th', {}, '面积 万m²'), el('th', {}, '面积占比')),
      ...modes.map((m) => el('tr', { 'data-mode': m.mode }, el('td', {}, MODE_NAMES[m.mode]), el('td', {}, m.compounds),
        el('td', {}, (m.floor_area_m2 / 10000).toFixed(1)), el('td', {}, pct(m.floor_area_m2, area))))),
  );
}

/* on: the overlay was switched on by the shareable link (before the first view). */
export function initCoverage({ on: fromLink }) {
  if (fromLink) $('#planner-toggle').checked = true;
  on('map:drawn', updateCoverage);
  $('#planner-toggle').addEventListener('change', () => {
    if (plannerOn()) showLayer('compound');
    emit('planner:change', { on: plannerOn() });
    refresh();
  });
}
