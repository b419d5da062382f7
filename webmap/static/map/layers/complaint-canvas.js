/* Complaint marks clustered on a screen grid and drawn on one canvas (thousands of DOM markers would slow every
 * pan): a dot coloured by ticket state for a single complaint, a count for a cluster, ringed red when any is
 * overdue. */
import { OVERDUE_COLOUR, STATE_COLOURS } from '../names.js';

const CLUSTER_CELL_PX = 48;
/* A cluster's fill; a single complaint is a dot of its state's colour (names.js) ringed white. */
export const CLUSTER_FILL = 'rgba(230,126,34,.85)';
export const SINGLE_DOT = { radius: 6, weight: 1.5, color: '#fff' };

export function complaintColour(p) { return p.overdue ? OVERDUE_COLOUR : STATE_COLOURS[p.state] || '#7f8c8d'; }

function countText(count) { return count >= 10000 ? `${(count / 10000).toFixed(1)}万` : String(count); }

/* Marks ({lat, lon, count, overdue, props}) merged per cell of a grid fixed to the world's pixels at a zoom, so
 * a pan keeps every cluster where it was. */
function clusterMarks(map, entry, zoom) {
  const cache = entry.clusterCache;
  if (cache && cache.zoom === zoom && cache.version === entry.version) return cache.clusters;
  const cells = new Map();
  for (const mark of entry.marks) {
    const point = map.project([mark.lat, mark.lon], zoom);
    const key = Math.floor(point.x / CLUSTER_CELL_PX) * 1e8 + Math.floor(point.y / CLUSTER_CELL_PX);
    let cell = cells.get(key);
    if (!cell) { cell = { x: 0, y: 0, count: 0, overdue: 0, members: [] }; cells.set(key, cell); }
    cell.x += point.x * mark.count; cell.y += point.y * mark.count;
    cell.count += mark.count; cell.overdue += mark.overdue;
    if (mark.props && cell.members.length < 500) cell.members.push(mark.props);
  }
  const clusters = [...cells.values()];
  for (const cell of clusters) { cell.x /= cell.count; cell.y /= cell.count; }
  entry.clusterCache = { zoom, version: entry.version, clusters };
  return clusters;
}

function radiusOf(cluster, single) {
  if (single) return SINGLE_DOT.radius;
  if (cluster.count < 10) return 13;
  if (cluster.count < 100) return 16;
  return cluster.count < 1000 ? 19 : 22;
}

function paint(context, items) {
  context.font = 'bold 12px sans-serif';
  context.textAlign = 'center';
  context.textBaseline = 'middle';
  for (const item of items) {
    context.beginPath();
    context.arc(item.x, item.y, item.radius, 0, 2 * Math.PI);
    if (item.single) {
      context.fillStyle = complaintColour(item.cluster.members[0]);
      context.fill();
      context.lineWidth = SINGLE_DOT.weight; context.strokeStyle = SINGLE_DOT.color; context.stroke();
      continue;
    }
    context.fillStyle = CLUSTER_FILL;
    context.fill();
    if (item.cluster.overdue) { context.lineWidth = 3; context.strokeStyle = OVERDUE_COLOUR; context.stroke(); }
    context.fillStyle = '#fff';
    context.fillText(countText(item.cluster.count), item.x, item.y);
  }
}

/* A Leaflet layer over an entry {marks, version}; _items are the clusters last drawn, in container pixels. */
export const ComplaintCanvas = L.Layer.extend({
  initialize(entry) { this._entry = entry; this._items = []; },
  onAdd(map) {
    this._canvas = L.DomUtil.create('canvas', 'complaint-canvas');
    map.getPane('complaints').appendChild(this._canvas);
    map.on('zoomstart', this._hide, this);
    map.on('moveend', this.redraw, this);
    this.redraw();
  },
  onRemove(map) {
    map.off('zoomstart', this._hide, this);
    map.off('moveend', this.redraw, this);
    L.DomUtil.remove(this._canvas);
    this._items = [];
  },
  _hide() { this._canvas.style.visibility = 'hidden'; }, // a zoom would stretch the old drawing
  redraw() {
    const map = this._map;
    if (!map) return;
    const size = map.getSize();
    const ratio = window.devicePixelRatio || 1;
    const canvas = this._canvas;
    if (canvas.width !== Math.round(size.x * ratio) || canvas.height !== Math.round(size.y * ratio)) {
      canvas.width = Math.round(size.x * ratio); canvas.height = Math.round(size.y * ratio);
      canvas.style.width = `${size.x}px`; canvas.style.height = `${size.y}px`;
    }
    L.DomUtil.setPosition(canvas, map.containerPointToLayerPoint([0, 0]));
    canvas.style.visibility = '';
    const context = canvas.getContext('2d');
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, size.x, size.y);
    const origin = map.getPixelBounds().min;
    const items = [];
    for (const cluster of clusterMarks(map, this._entry, map.getZoom())) {
      const x = cluster.x - origin.x;
      const y = cluster.y - origin.y;
      if (x < -30 || y < -30 || x > size.x + 30 || y > size.y + 30) continue;
      const single = cluster.count === 1 && cluster.members.length === 1;
      items.push({ x, y, radius: radiusOf(cluster, single), single, cluster });
    }
    paint(context, items);
    this._items = items;
    this._entry.drawnClusters = items.length;
  },
  /* The cluster or complaint drawn under a container point, if any. */
  hit(point) {
    for (let i = this._items.length - 1; i >= 0; i -= 1) {
      const item = this._items[i];
      const dx = item.x - point.x;
      const dy = item.y - point.y;
      if (dx * dx + dy * dy <= (item.radius + 3) ** 2) return item;
    }
    return null;
  },
});
