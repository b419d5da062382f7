/* The planners' overlay: compounds filled by management mode with service gaps stressed, the hotspots, a
 * legend, and the coverage figures of the compounds in view. */
import { emit, on } from '../bus.js';
import { $, el } from '../dom.js';
import { DEFS } from '../layers/defs.js';
import { HOT_CLASSES } from '../layers/hotspots.js';
import { layers } from '../layers/registry.js';
import { MODE_COLOURS, MODE_NAMES } from '../names.js';
import { refresh } from '../redraw.js';
import { map, plannerOn } from '../state.js';
import { showLayer } from './layer-list.js';

const isGap = (p) => p.management_mode === 'none' || (p.is_old_estate && p.management_mode === 'self_managed');
const pct = (a, b) => (b ? `${(100 * a / b).toFixed(1)}%` : '—');

function renderLegend() {
  const swatch = (style, name) => el('div', {}, el('i', { style }), name);
  $('#planner-legend').replaceChildren(
    ...Object.entries(MODE_NAMES).map(([mode, name]) => swatch(`background:${MODE_COLOURS[mode]}`, name)),
    swatch('background:#fff;border:2px dashed #4d4d4d', '老旧小区（虚线边框）'),
    swatch(`background:${MODE_COLOURS.none};opacity:.8`, '物业服务空白（无物业，或老旧小区自管）'),
    ...Object.values(HOT_CLASSES).map(([colour, name]) => swatch(`background:#fff;border:3px solid ${colour}`, name)),
  );
}

/* Counts and floor areas per management mode of the compounds whose centre is in view. */
function tally() {
  const view = map.getBounds();
  const t = { byMode: {}, total: 0, area: 0, old: 0, oldCovered: 0, gaps: 0 };
  layers.compound.group.eachLayer((layer) => {
    const p = layer.feature.properties;
    if (!view.contains(layer.getBounds().getCenter())) return;
    const row = t.byMode[p.management_mode] || (t.byMode[p.management_mode] = { count: 0, area: 0 });
    row.count += 1; row.area += p.floor_area_m2 || 0;
    t.total += 1; t.area += p.floor_area_m2 || 0;
    if (p.is_old_estate) { t.old += 1; if (p.management_mode !== 'none') t.oldCovered += 1; }
    if (isGap(p)) t.gaps += 1;
  });
  return t;
}

function updateCoverage() {
  const box = $('#coverage-figures');
  if (!plannerOn()) { box.replaceChildren(); return; }
  if (map.getZoom() < DEFS.compound.minZoom) {
    box.replaceChildren(el('p', { class: 'hint' }, '放大地图以计算视野内的覆盖率。'));
    return;
  }
  const t = tally();
  const professional = (t.byMode.professional || { area: 0 }).area;
  box.replaceChildren(
    el('h4', {}, '视野内覆盖情况'),
    el('p', { id: 'coverage-summary' },
      `小区 ${t.total} 个；专业化物业覆盖率（按建筑面积）${pct(professional, t.area)}；`,
      `老旧小区 ${t.old} 个，物业服务覆盖 ${pct(t.oldCovered, t.old)}；服务空白 ${t.gaps} 个。`),
    el('table', {},
      el('tr', {}, el('th', {}, '模式'), el('th', {}, '小区'), el('th', {}, '面积 万m²'), el('th', {}, '面积占比')),
      ...Object.keys(MODE_NAMES).map((mode) => {
        const row = t.byMode[mode] || { count: 0, area: 0 };
        return el('tr', { 'data-mode': mode }, el('td', {}, MODE_NAMES[mode]), el('td', {}, row.count),
          el('td', {}, (row.area / 10000).toFixed(1)), el('td', {}, pct(row.area, t.area)));
      })),
  );
}

/* on: the overlay was switched on by the shareable link (before the first view). */
export function initCoverage({ on: fromLink }) {
  renderLegend();
  if (fromLink) $('#planner-toggle').checked = true;
  on('map:drawn', updateCoverage);
  $('#planner-toggle').addEventListener('change', () => {
    if (plannerOn()) showLayer('compound');
    emit('planner:change', { on: plannerOn() });
    refresh();
  });
}
