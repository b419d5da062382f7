/* Search by compound, building, address or hotline ticket number: the map moves to the hit, then shows who is
 * responsible there (or, for a complaint, its ticket). */
import { api } from '../api.js';
import { emit } from '../bus.js';
import { $, el } from '../dom.js';
import { KIND_NAMES } from '../names.js';
import { map } from '../state.js';
import { askResponsibility } from './responsibility.js';

let searchTimer = null;
let searchController = null;
let found = null;

async function runSearch() {
  const query = $('#search').value.trim();
  const list = $('#search-results');
  if (!query) { list.hidden = true; return; }
  if (searchController) searchController.abort();
  searchController = new AbortController();
  try {
    const hits = await api(`/map/search.json?q=${encodeURIComponent(query)}`, { signal: searchController.signal });
    list.replaceChildren(...(hits.length ? hits.map((hit) => el('li', { onclick: () => goTo(hit), 'data-kind': hit.kind },
      el('span', { class: 'kind' }, KIND_NAMES[hit.kind] || hit.kind), hit.name,
      hit.detail ? el('span', { class: 'detail' }, hit.detail) : null)) : [el('li', { class: 'muted' }, '没有找到')]));
    list.hidden = false;
  } catch (error) {
    if (error.name !== 'AbortError') { list.replaceChildren(el('li', { class: 'muted' }, error.message)); list.hidden = false; }
  }
}

function goTo(hit) {
  $('#search-results').hidden = true;
  const [minx, miny, maxx, maxy] = hit.bbox;
  if (hit.kind === 'complaint') map.setView([hit.lat, hit.lon], 18);
  else map.fitBounds([[miny, minx], [maxy, maxx]], { maxZoom: hit.kind === 'building' ? 18 : 17 });
  if (found) found.remove();
  found = L.marker([hit.lat, hit.lon], { title: hit.name }).addTo(map);
  if (hit.kind === 'complaint') emit('complaint:find', { id: Number(hit.code), lon: hit.lon, lat: hit.lat });
  else askResponsibility(L.latLng(hit.lat, hit.lon));
}

export function initSearch() {
  const box = $('#search');
  box.addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 200); });
  box.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') { event.preventDefault(); clearTimeout(searchTimer); runSearch(); }
    if (event.key === 'Escape') $('#search-results').hidden = true;
  });
}
