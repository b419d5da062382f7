/* The map's legend: one box on the map listing exactly what is drawn now — each layer switched on (from the zoom
 * it draws at) and each overlay showing, with the entries its module declares from the styles it draws with
 * (layers/legend-entries.js). It follows layer switches, zoom, filters and overlays (map:drawn, planner:change,
 * filters:change, legend:change). On a desktop it is a compact box at the map's top right; on a phone it starts
 * folded to a small 图例 button, and unfolded it scrolls inside a box that leaves most of the map clear. */
import { on } from '../bus.js';
import { el } from '../dom.js';
import { DEFS, ORDER } from '../layers/defs.js';
import { legendOverlays } from '../layers/legend-entries.js';
import { layers } from '../layers/registry.js';
import { map, visible } from '../state.js';

const PHONE = '(max-width: 700px)';

let body = null;
let toggle = null;

/* The sources showing now, in drawing order, then the overlays: [{id, title, entries}]. */
export function legendShowing() {
  const zoom = map.getZoom();
  const showing = [];
  for (const name of ORDER) {
    const def = DEFS[name];
    if (!def || !def.legend || !layers[name] || !visible.has(name) || zoom < (def.minZoom || 0)) continue;
    showing.push({ id: name, title: def.legendTitle || def.title, entries: def.legend(zoom) });
  }
  for (const source of legendOverlays()) {
    if (source.shown()) showing.push({ id: source.id, title: source.title, entries: source.entries(zoom) });
  }
  return showing.filter((source) => source.entries.length);
}

function rgba(colour, opacity) {
  const hex = /^#([0-9a-f]{6})$/i.exec(colour || '');
  if (!hex) return colour || 'transparent';
  const n = parseInt(hex[1], 16);
  return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${opacity})`;
}

function swatchOf({ kind, color, weight, dash, fill, fillOpacity, radius, colours, ground }) {
  const border = (w) => `${Math.max(1, Math.min(w, 3))}px ${dash ? 'dashed' : 'solid'} ${color}`;
  let style = '';
  if (kind === 'line') style = `border-top:${border(weight)}${ground ? `;box-shadow:0 0 0 3px ${ground}` : ''}`;
  else if (kind === 'area') {
    style = `background:${fill ? rgba(fill, fillOpacity) : 'transparent'};border:${weight ? border(weight) : '0'}`;
  } else if (kind === 'dot') {
    const size = Math.round(2 * Math.min(radius, 9));
    style = `width:${size}px;height:${size}px;background:${rgba(fill, fillOpacity)};border:${border(weight)}`;
  } else if (kind === 'ramp') style = `background:linear-gradient(to right,${colours.join(',')})`;
  return el('i', { class: `sw sw-${kind}`, style, 'data-fill': fill || '', 'data-colour': color || '' });
}

function render() {
  if (!body) return;
  const showing = legendShowing();
  // a layer drawn one way is one line (its entry names it); others get a heading over their entries
  body.replaceChildren(...showing.map((source) => el('section', { 'data-legend': source.id },
    source.entries.length > 1 ? el('h5', {}, source.title) : null,
    el('ul', {}, ...source.entries.map((entry) => el('li', { 'data-legend-entry': entry.key },
      el('span', { class: 'sw-box' }, swatchOf(entry.swatch)), entry.text))))));
  if (!showing.length) body.append(el('p', { class: 'hint' }, '未显示任何图层'));
}

function setOpen(open) {
  body.hidden = !open;
  toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
  toggle.textContent = open ? '图例 ▾' : '图例 ▸';
}

export function initLegend() {
  const Legend = L.Control.extend({
    onAdd() {
      toggle = el('button', { type: 'button', id: 'legend-toggle', 'aria-controls': 'legend-body',
        onclick: () => setOpen(body.hidden) });
      body = el('div', { id: 'legend-body' });
      const box = el('div', { id: 'legend', class: 'map-legend', role: 'region', 'aria-label': '图例' }, toggle, body);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    },
  });
  new Legend({ position: 'topright' }).addTo(map);
  setOpen(!window.matchMedia(PHONE).matches);
  for (const type of ['map:drawn', 'planner:change', 'filters:change', 'legend:change']) on(type, render);
  render();
}
