/* Complaints, coloured by ticket state, red when overdue. Zoomed out they come as counts per grid or
 * micro-grid (one index-only count on the server instead of a million points); from POINT_ZOOM, or when
 * filtered, as single complaints. Either way they are clustered and drawn on one canvas (complaint-canvas.js).
 * A click on a complaint opens it; on a cluster zooms in to it, or lists it at the deepest zoom. */
import { api, bboxParam, session } from '../api.js';
import { emit, on } from '../bus.js';
import { el } from '../dom.js';
import { categoryName, OVERDUE_COLOUR, STATE_COLOURS, STATE_NAMES } from '../names.js';
import { showPanel } from '../panel.js';
import { tracked } from '../progress.js';
import { refresh } from '../redraw.js';
import { filters, filtersActive, heatOn, map, visible } from '../state.js';
import { CLUSTER_FILL, ComplaintCanvas, SINGLE_DOT } from './complaint-canvas.js';
import { DEFS } from './defs.js';
import { heatShown, hideHeat, showHeat } from './heat.js';
import { dotEntry } from './legend-entries.js';

const POINT_ZOOM = 17;
const POINT_LIMIT = 20000;

/* The legend: clusters (ringed when any is overdue); single complaints by state, as the filters leave them, from
 * the zoom where they are drawn one by one. */
DEFS.complaint.legend = (zoom) => {
  const cluster = { radius: 8, fillColor: CLUSTER_FILL, color: CLUSTER_FILL, weight: 1 };
  const entries = [dotEntry('cluster', cluster, '投诉聚合（数字为件数）'),
    dotEntry('cluster_overdue', Object.assign({}, cluster, { color: OVERDUE_COLOUR, weight: 3 }), '聚合内有超期投诉')];
  if (complaintSource(zoom).kind !== 'points') return entries;
  const dot = (key, colour, text) => dotEntry(key, Object.assign({}, SINGLE_DOT, { fillColor: colour }), text);
  const byColour = new Map(); // states drawn alike share one entry
  for (const state of Object.keys(STATE_COLOURS)) {
    if (filters.overdue || (filters.state && filters.state !== state)) continue;
    const colour = STATE_COLOURS[state];
    if (!byColour.has(colour)) byColour.set(colour, []);
    byColour.get(colour).push(state);
  }
  const states = [...byColour].map(([colour, names]) => dot(`state:${names.join(',')}`, colour,
    names.map((state) => STATE_NAMES[state]).join('、')));
  return entries.concat(states, [dot('overdue', OVERDUE_COLOUR, '超期（任何状态）')]);
};

export function makeComplaintLayer() {
  const entry = { name: 'complaint', def: DEFS.complaint, points: [], marks: [], version: 0, loadedKey: '' };
  entry.layer = new ComplaintCanvas(entry);
  entry.group = entry.layer;
  // what a signed-in person may see, and the tickets' states, change: fetch again
  const stale = () => { entry.loadedKey = ''; refresh(); };
  on('session:change', stale);
  on('ticket:changed', stale);
  on('filters:change', () => refresh());
  return entry;
}

function complaintQuery(bounds) {
  const params = new URLSearchParams({ bbox: bboxParam(bounds), limit: String(POINT_LIMIT) });
  if (filters.category.length) params.set('category', filters.category.join(','));
  if (filters.state) params.set('state', filters.state);
  if (filters.from) params.set('date_from', filters.from);
  if (filters.to) params.set('date_to', filters.to);
  if (filters.overdue) params.set('overdue', 'true');
  return params;
}

/* What to fetch at a zoom: single complaints, or counts per grid (zoomed far out) or per micro-grid. Counts
 * and points do not depend on the zoom, so one answer serves every zoom of its kind inside its bounds. */
function complaintSource(zoom) {
  if (zoom >= POINT_ZOOM || filtersActive()) return { kind: 'points', pad: 0.2 };
  return zoom <= 13 ? { kind: 'grid', pad: 0.5 } : { kind: 'micro_grid', pad: 0.3 };
}

async function fetchComplaints(entry, view, zoom) {
  const source = complaintSource(zoom);
  const fetchBounds = view.pad(source.pad);
  const params = source.kind === 'points' ? complaintQuery(fetchBounds)
    : new URLSearchParams({ bbox: bboxParam(fetchBounds), level: source.kind });
  const key = `${source.kind}|${[...params.entries()].filter(([k]) => k !== 'bbox').join('&')}|${session.token || ''}`;
  if (entry.loadedKey === key && entry.loadedBounds && entry.loadedBounds.contains(view)) return false;
  if (entry.controller) entry.controller.abort();
  entry.controller = new AbortController();
  const signal = entry.controller.signal;
  if (source.kind === 'points') {
    const collection = await tracked(api(`/map/complaints.geojson?${params}`, { signal }));
    entry.points = collection.features;
    entry.marks = collection.features.map((feature) => ({
      lon: feature.geometry.coordinates[0], lat: feature.geometry.coordinates[1], count: 1,
      overdue: feature.properties.overdue ? 1 : 0, props: feature.properties }));
    entry.capped = collection.features.length >= POINT_LIMIT;
    entry.loadedBounds = entry.capped ? view : fetchBounds;
  } else {
    const rows = await tracked(api(`/map/complaint-counts.json?${params}`, { signal }));
    entry.points = [];
    entry.marks = rows.map(([lon, lat, count, overdue]) => ({ lon, lat, count, overdue }));
    entry.capped = false;
    entry.loadedBounds = fetchBounds;
  }
  entry.source = source.kind;
  entry.loadedKey = key;
  entry.version += 1;
  return true;
}

export async function loadComplaints(entry) {
  const zoom = map.getZoom();
  const wantPoints = visible.has('complaint') && zoom >= DEFS.complaint.minZoom;
  const wantHeat = heatOn();
  if (!wantPoints) map.removeLayer(entry.layer);
  if (!wantHeat) hideHeat();
  if (!wantPoints && !wantHeat) return;
  const changed = await fetchComplaints(entry, map.getBounds(), zoom);
  if (wantPoints) {
    if (map.hasLayer(entry.layer)) { if (changed) entry.layer.redraw(); } else entry.layer.addTo(map);
  }
  if (wantHeat && (changed || !heatShown())) showHeat(entry.marks);
}

/* The status line's note while more complaints are in view than were fetched. */
export function complaintNotice(entry) {
  return entry.capped && map.hasLayer(entry.layer) ? `视野内投诉较多，仅显示最新 ${POINT_LIMIT} 条；放大地图可看全部。` : '';
}

/* Whether a container point is over a complaint or cluster drawn on the canvas. */
export function overComplaint(entry, point) {
  return map.hasLayer(entry.layer) && entry.layer.hit(point) !== null;
}

/* Opens the complaint or cluster under a container point; false when there is none. */
export function clickComplaints(entry, point) {
  if (!map.hasLayer(entry.layer)) return false;
  const item = entry.layer.hit(point);
  if (!item) return false;
  const { cluster } = item;
  if (item.single) { emit('complaint:open', cluster.members[0]); return true; }
  const zoom = map.getZoom();
  if (zoom < map.getMaxZoom() && !(cluster.members.length === cluster.count && zoom >= 18)) {
    map.setView(map.unproject([cluster.x, cluster.y], zoom), Math.min(zoom + 2, map.getMaxZoom()));
    return true;
  }
  showPanel(el('h3', {}, `此处投诉 ${cluster.count} 件`), el('ul', { class: 'list', id: 'cluster-list' },
    ...cluster.members.map((p) => el('li', { 'data-complaint': p.id, class: p.overdue ? 'overdue' : '',
      onclick: () => emit('complaint:open', p) }, `#${p.ticket_id || p.id} `, el('strong', {}, categoryName(p.category)),
    ` ${STATE_NAMES[p.state] || ''}`, p.overdue ? el('span', { class: 'badge red' }, '超期') : null))));
  return true;
}
