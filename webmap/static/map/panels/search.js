/* The search box: compounds, buildings, whole addresses, units and hotline ticket numbers, read as addresses by
 * the server's gazetteer. Results are a list (a listbox for screen readers) chosen by keyboard (ArrowDown,
 * ArrowUp, Enter, Escape), mouse or touch. A building found switches the building layer on and zooms to it; a
 * street office, community, grid or compound is framed; then the panel shows who is responsible there (or, for a
 * complaint, its ticket). */
import { api } from '../api.js';
import { emit } from '../bus.js';
import { $, el } from '../dom.js';
import { KIND_NAMES } from '../names.js';
import { refresh } from '../redraw.js';
import { map } from '../state.js';
import { showLayer } from './layer-list.js';
import { askResponsibility } from './responsibility.js';

const DEBOUNCE_MS = 250;

let searchTimer = null;
let searchController = null;
let found = null;
const shown = { query: null, hits: [], active: -1 };
let pendingEnter = false;

const box = () => $('#search');
const list = () => $('#search-results');

function setOpen(open) {
  list().hidden = !open;
  box().setAttribute('aria-expanded', open ? 'true' : 'false');
  if (!open) setActive(-1);
}

function setActive(index) {
  shown.active = index;
  const items = [...list().querySelectorAll('li[data-index]')];
  items.forEach((item, i) => {
    item.classList.toggle('active', i === index);
    item.setAttribute('aria-selected', i === index ? 'true' : 'false');
  });
  if (index >= 0 && items[index]) {
    box().setAttribute('aria-activedescendant', items[index].id);
    items[index].scrollIntoView({ block: 'nearest' });
  } else {
    box().removeAttribute('aria-activedescendant');
  }
}

function showMessage(text) {
  shown.hits = [];
  list().replaceChildren(el('li', { class: 'muted', role: 'presentation' }, text));
  setOpen(true);
}

function showHits(query, hits) {
  shown.query = query;
  shown.hits = hits;
  if (!hits.length) { showMessage('没有找到'); shown.query = query; return; }
  list().replaceChildren(...hits.map((hit, i) => el('li', {
    id: `search-hit-${i}`, role: 'option', 'aria-selected': 'false', 'data-index': i, 'data-kind': hit.kind,
    'data-code': hit.code,
    // keep the focus in the box, so a click or a tap does not close the list before it lands
    onmousedown: (event) => event.preventDefault(),
    onmousemove: () => { if (shown.active !== i) setActive(i); },
    onclick: () => goTo(hit),
  }, el('span', { class: 'kind' }, KIND_NAMES[hit.kind] || hit.kind), hit.name,
  hit.detail ? el('span', { class: 'detail' }, hit.detail) : null)));
  setOpen(true);
  setActive(-1);
}

async function runSearch() {
  const query = box().value.trim();
  if (!query) { setOpen(false); shown.query = null; return; }
  if (searchController) searchController.abort();
  const controller = new AbortController();
  searchController = controller;
  try {
    const hits = await api(`/map/search.json?q=${encodeURIComponent(query)}`, { signal: controller.signal });
    if (controller !== searchController) return;
    showHits(query, hits);
    if (pendingEnter) { pendingEnter = false; if (hits.length) goTo(hits[0]); }
  } catch (error) {
    if (error.name !== 'AbortError') { pendingEnter = false; showMessage(error.message); }
  }
}

function frame(hit) {
  const [minx, miny, maxx, maxy] = hit.bbox;
  const bounds = L.latLngBounds([[miny, minx], [maxy, maxx]]);
  if (hit.kind === 'complaint') map.setView([hit.lat, hit.lon], 18);
  else if (hit.kind === 'building') map.fitBounds(bounds, { maxZoom: 18 });
  else if (hit.kind === 'compound' || hit.kind === 'micro_grid') {
    map.fitBounds(bounds, { maxZoom: 17, padding: [20, 20] });
  }
  else map.fitBounds(bounds, { padding: [20, 20] });  // street, community, grid: the whole area in view
}

function goTo(hit) {
  clearTimeout(searchTimer);
  setOpen(false);
  box().value = hit.name;
  shown.query = hit.name;
  if (hit.kind === 'building') showLayer('building');
  frame(hit);
  refresh();
  if (found) found.remove();
  found = L.marker([hit.lat, hit.lon], { title: hit.name }).addTo(map);
  emit('search:found', { kind: hit.kind, code: hit.code });
  if (hit.kind === 'complaint') emit('complaint:find', { id: Number(hit.code), lon: hit.lon, lat: hit.lat });
  else askResponsibility(L.latLng(hit.lat, hit.lon));
}

function onKey(event) {
  const open = !list().hidden && shown.hits.length > 0;
  if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
    event.preventDefault();
    if (!open) { if (shown.hits.length && shown.query === box().value.trim()) setOpen(true); else return; }
    const step = event.key === 'ArrowDown' ? 1 : -1;
    const count = shown.hits.length;
    setActive(shown.active < 0 ? (step > 0 ? 0 : count - 1) : (shown.active + step + count) % count);
  } else if (event.key === 'Enter') {
    event.preventDefault();
    const current = shown.query === box().value.trim();
    if (open && current && shown.active >= 0) goTo(shown.hits[shown.active]);
    else if (current && shown.hits.length) goTo(shown.hits[0]);
    else { clearTimeout(searchTimer); pendingEnter = true; runSearch(); }
  } else if (event.key === 'Escape') {
    if (!list().hidden) { event.preventDefault(); setOpen(false); }
  }
}

export function initSearch() {
  const input = box();
  input.setAttribute('role', 'combobox');
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', 'search-results');
  input.setAttribute('aria-expanded', 'false');
  list().setAttribute('role', 'listbox');
  list().setAttribute('aria-label', '搜索结果');
  input.addEventListener('input', () => {
    pendingEnter = false;
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, DEBOUNCE_MS);
  });
  input.addEventListener('keydown', onKey);
  input.addEventListener('focus', () => {
    if (shown.hits.length && shown.query === input.value.trim()) setOpen(true);
  });
  // a tap or click outside the box closes the list
  document.addEventListener('pointerdown', (event) => {
    if (!$('#search-box').contains(event.target)) setOpen(false);
  });
}
