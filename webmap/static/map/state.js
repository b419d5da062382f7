/* What the page shows, shared by the modules that draw it: the Leaflet map and its canvas renderer, the layers
 * switched on, the complaint filters and the overlay switches. Everything else is kept by the module it
 * belongs to. */
import { $ } from './dom.js';

/* The Leaflet map, set once by main.js before anything is drawn (imports see it through the live binding). */
export let map = null;
export let renderer = null;

export function setMap(leafletMap, canvasRenderer) {
  map = leafletMap;
  renderer = canvasRenderer;
}

/* Names of the layers switched on. */
export const visible = new Set(['street', 'community', 'grid', 'compound']);

export function setVisible(names) {
  visible.clear();
  for (const name of names) visible.add(name);
}

/* The complaint filters: categories, ticket state, reported from / to (YYYY-MM-DD), overdue only. */
export const filters = { category: [], state: '', from: '', to: '', overdue: false };

export function clearFilters() {
  Object.assign(filters, { category: [], state: '', from: '', to: '', overdue: false });
}

export function filtersActive() {
  return Boolean(filters.category.length || filters.state || filters.from || filters.to || filters.overdue);
}

/* The overlay switches in the sidebar. */
export const plannerOn = () => $('#planner-toggle').checked;
export const heatOn = () => $('#heat-toggle').checked;
export const hotspotsOn = () => $('#hotspot-toggle').checked;
export const hotspotLevel = () => $('#hotspot-level').value;
