/* The shareable link: the address bar's #fragment keeps the view, the layers, the filters, the tab and the
 * overlay, so a copied link opens the same map.
 *
 *   #v=zoom/lat/lon & l=street,community & cat=A,B & st=state & from=YYYY-MM-DD & to=YYYY-MM-DD & od=1
 *    & tab=planner & plan=1 & hl=grid
 */
import { on } from './bus.js';
import { filters, hotspotLevel, map, plannerOn, setVisible, visible } from './state.js';

/* Reads the fragment into the layers and filters; answers the rest (view, tab, planner, hotspot level) for the
 * start to apply. */
export function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const view = (params.get('v') || '').split('/').map(Number);
  if (params.has('l')) setVisible(params.get('l').split(',').filter(Boolean));
  filters.category = (params.get('cat') || '').split(',').filter(Boolean);
  filters.state = params.get('st') || '';
  filters.from = params.get('from') || '';
  filters.to = params.get('to') || '';
  filters.overdue = params.get('od') === '1';
  return {
    view: view.length === 3 && view.every(Number.isFinite) ? { zoom: view[0], lat: view[1], lon: view[2] } : null,
    tab: params.get('tab'),
    planner: params.get('plan') === '1',
    hotLevel: params.get('hl'),
  };
}

/* Writes what the page shows into the fragment, without adding a history entry. */
export function writeHash() {
  if (!map || !map._loaded) return;
  const centre = map.getCenter();
  const params = new URLSearchParams();
  params.set('v', `${map.getZoom()}/${centre.lat.toFixed(5)}/${centre.lng.toFixed(5)}`);
  params.set('l', [...visible].join(','));
  if (filters.category.length) params.set('cat', filters.category.join(','));
  if (filters.state) params.set('st', filters.state);
  if (filters.from) params.set('from', filters.from);
  if (filters.to) params.set('to', filters.to);
  if (filters.overdue) params.set('od', '1');
  const tab = document.querySelector('.tabs button.active');
  if (tab && tab.dataset.tab !== 'layers') params.set('tab', tab.dataset.tab);
  if (plannerOn()) params.set('plan', '1');
  if (hotspotLevel() !== 'micro_grid') params.set('hl', hotspotLevel());
  history.replaceState(null, '', `#${params.toString().replace(/%2C/g, ',').replace(/%2F/g, '/')}`);
}

/* Keeps the fragment up to date, and follows a view typed or pasted into the address bar. */
export function initHash() {
  for (const type of ['map:drawn', 'tab:change', 'overlay:change']) on(type, writeHash);
  window.addEventListener('hashchange', () => {
    const again = readHash();
    if (again.view) map.setView([again.view.lat, again.view.lon], again.view.zoom);
  });
}
