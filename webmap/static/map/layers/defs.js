/* What each layer is: its title in the layer list, colour, the zooms it shows and labels at, its style. */
import { MODE_COLOURS, MODE_NAMES } from '../names.js';
import { plannerOn } from '../state.js';
import { areaEntry, lineEntry } from './legend-entries.js';

/* Compounds coloured by management mode, old estates dashed; the planners' overlay fills service gaps. */
export function compoundStyle(feature) {
  const p = feature.properties;
  const planner = plannerOn();
  const gap = p.management_mode === 'none' || (p.is_old_estate && p.management_mode === 'self_managed');
  return {
    color: p.is_old_estate ? '#4d4d4d' : MODE_COLOURS[p.management_mode] || '#555',
    weight: p.is_old_estate ? 2 : 1, dashArray: p.is_old_estate ? '4 3' : null,
    fillColor: MODE_COLOURS[p.management_mode] || '#999',
    fillOpacity: planner ? (gap ? 0.75 : 0.45) : 0.3,
  };
}

/* whole: fetched once for the whole city; label: [from zoom, to zoom]; limit: features per fetch. */
export const DEFS = {
  basemap: { title: '底图（本地瓦片）', colour: '#bdb9b1', kind: 'basemap' },
  street: { title: '街道办事处', colour: '#c0392b', whole: true, label: [0, 13],
    style: { color: '#c0392b', weight: 3, fill: false } },
  community: { title: '社区', colour: '#7d3c98', whole: true, label: [13, 15],
    style: { color: '#7d3c98', weight: 2, fill: false, dashArray: '6 4' } },
  grid: { title: '网格', colour: '#2471a3', minZoom: 13, style: { color: '#2471a3', weight: 1.2, fill: false } },
  micro_grid: { title: '微网格', colour: '#17a589', minZoom: 15,
    style: { color: '#17a589', weight: 1, fill: false, dashArray: '3 3' } },
  compound: { title: '小区（物业模式、老旧小区虚线）', colour: '#1e8449', minZoom: 14, label: [16, 30],
    style: compoundStyle },
  building: { title: '楼栋（17级显示楼号）', colour: '#616a6b', minZoom: 16, label: [17, 30], limit: 5000,
    style: { color: '#616a6b', weight: 1, fillColor: '#d5d8dc', fillOpacity: 0.7 } },
  party: { title: '党组织（服务所在地）', colour: '#d4000f', minZoom: 12, kind: 'party' },
  complaint: { title: '投诉（按状态/超期着色，聚合）', colour: '#e67e22', minZoom: 11, kind: 'complaint' },
  // role: the one role that gets the layer's switch (panels/layer-list.js)
  integrity: { title: '数据完整性问题（仅管理员）', colour: '#e6007e', kind: 'integrity', role: 'admin' },
};

export const ORDER = ['basemap', 'street', 'community', 'grid', 'micro_grid', 'compound', 'building', 'party',
  'complaint', 'integrity'];

/* The legend's entries of the boundary layers, from the styles above (party.js and complaints.js add their own). */
const compoundLegend = () => {
  const as = (mode, old) => compoundStyle({ properties: { management_mode: mode, is_old_estate: old } });
  return [
    ...Object.keys(MODE_NAMES).map((mode) => areaEntry(`mode:${mode}`, as(mode, false), MODE_NAMES[mode])),
    areaEntry('old_estate', Object.assign(as('professional', true), { fill: false }), '老旧小区（虚线边框）'),
    ...(plannerOn() ? [areaEntry('gap', as('none', false), '物业服务空白（无物业，或老旧小区自管）：填色加深')] : []),
  ];
};
for (const name of ['street', 'community', 'grid', 'micro_grid']) {
  DEFS[name].legend = () => [lineEntry(name, DEFS[name].style, `${DEFS[name].title}边界`)];
}
DEFS.compound.legend = compoundLegend;
DEFS.building.legend = (zoom) => [areaEntry('building', DEFS.building.style,
  zoom >= DEFS.building.label[0] ? '楼栋（数字为楼号）' : `楼栋（${DEFS.building.label[0]}级起显示楼号）`)];
