/* gridgov map workspace: layers, "who is responsible here", search, filters, work from the map, planners' overlay.
 * Everything is fetched from the app's own API; nothing leaves the server. */
(function () {
  'use strict';

  const $ = (selector) => document.querySelector(selector);
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === 'class') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  };

  const MODE_COLOURS = {
    professional: '#1e8449', community_led: '#2e86c1', entrusted: '#f39c12', self_managed: '#8e44ad', none: '#c0392b',
  };
  const MODE_NAMES = {
    professional: '专业化物业', community_led: '社区领办', entrusted: '社区代管', self_managed: '居民自管', none: '无物业',
  };
  const STATE_NAMES = {
    reported: '已上报', registered: '已立案', rejected: '不予立案', dispatched: '已派遣', in_progress: '处置中',
    handled: '已处置', closed: '已结案', merged: '已合并',
  };
  const STATE_COLOURS = {
    reported: '#7f8c8d', registered: '#5d6d7e', dispatched: '#e67e22', in_progress: '#f1c40f', handled: '#3498db',
    closed: '#27ae60', rejected: '#aab7b8', merged: '#aab7b8',
  };
  const OVERDUE_COLOUR = '#c0392b';
  const STANDING = { red: ['红榜', 'red'], black: ['黑榜', 'black'], none: ['未上榜', ''], unrated: ['未评价', ''] };
  const PARTY_KINDS = {
    community_committee: '社区党委', grid_branch: '网格党支部', compound_branch: '小区党支部',
    building_group: '楼院党小组', company_branch: '物业企业党组织',
  };
  const ROLE_NAMES = {
    admin: '管理员', street: '街道办', community: '社区', grid_worker: '网格员', property_company: '物业企业',
    planner: '规划人员', public: '公众', reviewer: '审核员',
  };

  /* ---------- state shared by the page ---------- */
  const S = {
    config: null, routes: new Set(), token: sessionStorage.getItem('gridgov.token'),
    role: sessionStorage.getItem('gridgov.role'), username: sessionStorage.getItem('gridgov.username'),
    mode: 'inspect', filters: { category: [], state: '', from: '', to: '', overdue: false },
    visible: new Set(['street', 'community', 'grid', 'compound']), layers: {}, drawn: null, placing: null,
    loading: 0, lastDraw: 0, drawWaiters: [], me: JSON.parse(sessionStorage.getItem('gridgov.me') || 'null'), workflow: null,
  };
  window.gridgov = S; // the browser tests and the benchmark read progress from here
  /* Resolves when the redraw after the next move has finished (all fetches and clustering done). */
  S.nextDraw = () => new Promise((resolve) => { S.drawWaiters.push(resolve); });

  const has = (method, path) => S.routes.has(`${method} ${path}`);

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (S.token) headers.Authorization = `Bearer ${S.token}`;
    let body = options.body;
    if (body && !(body instanceof FormData) && typeof body !== 'string') {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(body);
    }
    const response = await fetch(path, { method: options.method || 'GET', headers, body, signal: options.signal });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (error) { data = text; }
    if (!response.ok) {
      let detail = data && data.detail !== undefined ? data.detail : text;
      if (Array.isArray(detail)) detail = detail.map((item) => item.msg || JSON.stringify(item)).join('; ');
      const error = new Error(`${response.status}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function status(message) { $('#status').textContent = message || ''; }

  /* ---------- URL hash: view, layers, filters ---------- */
  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const view = (params.get('v') || '').split('/').map(Number);
    if (params.has('l')) S.visible = new Set(params.get('l').split(',').filter(Boolean));
    S.filters.category = (params.get('cat') || '').split(',').filter(Boolean);
    S.filters.state = params.get('st') || '';
    S.filters.from = params.get('from') || '';
    S.filters.to = params.get('to') || '';
    S.filters.overdue = params.get('od') === '1';
    return {
      view: view.length === 3 && view.every(Number.isFinite) ? { zoom: view[0], lat: view[1], lon: view[2] } : null,
      tab: params.get('tab'),
      planner: params.get('plan') === '1',
      hotLevel: params.get('hl'),
    };
  }

  function writeHash() {
    if (!S.map || !S.map._loaded) return;
    const centre = S.map.getCenter();
    const params = new URLSearchParams();
    params.set('v', `${S.map.getZoom()}/${centre.lat.toFixed(5)}/${centre.lng.toFixed(5)}`);
    params.set('l', [...S.visible].join(','));
    if (S.filters.category.length) params.set('cat', S.filters.category.join(','));
    if (S.filters.state) params.set('st', S.filters.state);
    if (S.filters.from) params.set('from', S.filters.from);
    if (S.filters.to) params.set('to', S.filters.to);
    if (S.filters.overdue) params.set('od', '1');
    const tab = document.querySelector('.tabs button.active');
    if (tab && tab.dataset.tab !== 'layers') params.set('tab', tab.dataset.tab);
    if ($('#planner-toggle').checked) params.set('plan', '1');
    if ($('#hotspot-level').value !== 'micro_grid') params.set('hl', $('#hotspot-level').value);
    history.replaceState(null, '', `#${params.toString().replace(/%2C/g, ',').replace(/%2F/g, '/')}`);
  }

  function bboxParam(bounds) {
    return [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()]
      .map((value, index) => Math.max(index % 2 ? -90 : -180, Math.min(index % 2 ? 90 : 180, value)).toFixed(6))
      .join(',');
  }

  /* ---------- layers ---------- */
  function compoundStyle(feature) {
    const p = feature.properties;
    const planner = $('#planner-toggle').checked;
    const gap = p.management_mode === 'none' || (p.is_old_estate && p.management_mode === 'self_managed');
    return {
      color: p.is_old_estate ? '#4d4d4d' : MODE_COLOURS[p.management_mode] || '#555',
      weight: p.is_old_estate ? 2 : 1, dashArray: p.is_old_estate ? '4 3' : null,
      fillColor: MODE_COLOURS[p.management_mode] || '#999',
      fillOpacity: planner ? (gap ? 0.75 : 0.45) : 0.3,
    };
  }

  const DEFS = {
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
  };
  const ORDER = ['street', 'community', 'grid', 'micro_grid', 'compound', 'building', 'party', 'complaint'];

  function labelFor(name, feature) {
    const p = feature.properties;
    if (name === 'building') return p.number ? `${p.number}号楼` : p.name;
    return p.name;
  }

  function makeVectorLayer(name) {
    const def = DEFS[name];
    const group = L.geoJSON(null, {
      interactive: false, style: def.style, renderer: S.renderer,
      onEachFeature: (feature, layer) => {
        if (def.label) layer._labelText = labelFor(name, feature);
      },
    });
    return { name, def, group, loadedBounds: null, loadedKey: '', controller: null, labels: L.layerGroup() };
  }

  /* Where a layer's labels go, worked out once per load. */
  function labelItemsOf(entry) {
    if (!entry.labelItems) {
      const items = [];
      entry.group.eachLayer((layer) => {
        if (layer._labelText) {
          items.push({ key: String(layer.feature.id ?? L.stamp(layer)), latlng: layer.getBounds().getCenter(),
            text: layer._labelText });
        }
      });
      entry.labelItems = items;
    }
    return entry.labelItems;
  }

  /* Labels are DOM tooltips (Chinese text renders best there); a move adds and removes only the ones that
   * enter or leave the view. */
  function updateLabels(entry) {
    const def = entry.def;
    const zoom = S.map.getZoom();
    const shown = entry.shownLabels || (entry.shownLabels = new Map());
    const wanted = new Map();
    if (def.label && S.visible.has(entry.name) && zoom >= def.label[0] && zoom <= def.label[1]) {
      const view = S.map.getBounds().pad(0.1);
      for (const item of labelItemsOf(entry)) {
        if (wanted.size >= 400) break;
        if (view.contains(item.latlng)) wanted.set(item.key, item);
      }
    }
    for (const [key, tooltip] of shown) {
      const item = wanted.get(key);
      if (!item || item.text !== tooltip._labelText || !item.latlng.equals(tooltip.getLatLng())) {
        entry.labels.removeLayer(tooltip);
        shown.delete(key);
      }
    }
    for (const [key, item] of wanted) {
      if (shown.has(key)) continue;
      const tooltip = L.tooltip({ permanent: true, direction: 'center', className: `label ${entry.name}`,
        interactive: false }).setLatLng(item.latlng).setContent(document.createTextNode(item.text));
      tooltip._labelText = item.text;
      entry.labels.addLayer(tooltip);
      shown.set(key, tooltip);
    }
  }

  async function loadVector(entry) {
    const { name, def } = entry;
    const zoom = S.map.getZoom();
    const visible = S.visible.has(name) && zoom >= (def.minZoom || 0);
    if (!visible) {
      S.map.removeLayer(entry.group);
      S.map.removeLayer(entry.labels);
      return;
    }
    entry.group.addTo(S.map);
    entry.labels.addTo(S.map);
    const view = S.map.getBounds();
    // features loaded two zooms out are many times more than the view needs, and every redraw pays for them
    const reusable = entry.loadedBounds && entry.loadedBounds.contains(view) && zoom - entry.loadedZoom < 2;
    if (def.whole ? entry.loadedKey === 'all' : reusable) {
      updateLabels(entry);
      return;
    }
    const fetchBounds = view.pad(0.3);
    const limit = def.limit || 10000;
    const url = def.whole ? `/layers/${name}.geojson` : `/layers/${name}.geojson?bbox=${bboxParam(fetchBounds)}&limit=${limit}`;
    if (entry.controller) entry.controller.abort();
    entry.controller = new AbortController();
    const collection = await tracked(api(url, { signal: entry.controller.signal }));
    entry.group.clearLayers();
    entry.group.addData(collection);
    entry.labelItems = null;
    entry.loadedKey = def.whole ? 'all' : '';
    entry.loadedBounds = collection.features.length >= limit ? view : fetchBounds;
    entry.loadedZoom = zoom;
    entry.count = collection.features.length;
    updateLabels(entry);
    if (name === 'compound') updateCoverage();
  }

  /* Buildings come as vector tiles when the tiles service is there: a whole city stays fluid. */
  function makeBuildingTiles() {
    if (!has('GET', '/tiles/{layer}/{z}/{x}/{y}.mvt') || !L.vectorGrid) return null;
    const style = DEFS.building.style;
    return L.vectorGrid.protobuf('/tiles/building/{z}/{x}/{y}.mvt', {
      rendererFactory: L.canvas.tile, interactive: false, minZoom: DEFS.building.minZoom, maxNativeZoom: 18,
      vectorTileLayerStyles: { building: Object.assign({ fill: true }, style) },
    });
  }

  async function loadBuildings(entry) {
    const zoom = S.map.getZoom();
    const on = S.visible.has('building') && zoom >= DEFS.building.minZoom;
    if (!entry.tiles) return loadVector(entry);
    if (!on) {
      S.map.removeLayer(entry.tiles);
      S.map.removeLayer(entry.labels);
      return;
    }
    entry.tiles.addTo(S.map);
    // labels need the numbers: fetch the points of the buildings in view only when labels show
    if (zoom >= DEFS.building.label[0]) {
      entry.labels.addTo(S.map);
      const view = S.map.getBounds();
      if (!(entry.loadedBounds && entry.loadedBounds.contains(view))) {
        const fetchBounds = view.pad(0.3);
        const limit = 3000;
        if (entry.controller) entry.controller.abort();
        entry.controller = new AbortController();
        const rows = await tracked(api(`/map/building-labels.json?bbox=${bboxParam(fetchBounds)}&limit=${limit}`,
          { signal: entry.controller.signal }));
        entry.labelItems = rows.map(([lon, lat, number]) => ({ key: `${lon},${lat}`, latlng: L.latLng(lat, lon),
          text: `${number}号楼` }));
        entry.loadedBounds = rows.length >= limit ? view : fetchBounds;
      }
      updateLabels(entry);
    } else {
      S.map.removeLayer(entry.labels);
    }
  }

  /* Resolves when the building tiles in view are drawn (or at once when none are loading). */
  function tilesDrawn() {
    const tiles = S.layers.building && S.layers.building.tiles;
    if (!tiles || !S.map.hasLayer(tiles) || !tiles.isLoading()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); tiles.off('load', done); resolve(); };
      const timer = setTimeout(done, 10000);
      tiles.on('load', done);
    });
  }

  /* Party organisations drawn inside the unit each serves. */
  function makePartyLayer() {
    const group = L.geoJSON(null, {
      // drawn on the canvas: hundreds of DOM markers would slow every pan
      pointToLayer: (feature, latlng) => L.circleMarker(latlng, {
        renderer: S.renderer, radius: feature.properties.kind === 'community_committee' ? 8 : 6,
        color: '#ffd700', weight: 2, fillColor: '#d4000f', fillOpacity: 0.95, bubblingMouseEvents: false,
      }).bindTooltip(feature.properties.name).bindPopup(() => el('div', {},
        el('strong', {}, feature.properties.name), el('br'),
        `${PARTY_KINDS[feature.properties.kind] || feature.properties.kind} · 党员 ${feature.properties.member_count} 名`)),
    });
    return { name: 'party', def: DEFS.party, group, loadedBounds: null };
  }

  async function loadParty(entry) {
    const zoom = S.map.getZoom();
    if (!S.visible.has('party') || zoom < DEFS.party.minZoom) { S.map.removeLayer(entry.group); return; }
    entry.group.addTo(S.map);
    const kinds = ['community_committee'];
    if (zoom >= 14) kinds.push('grid_branch');
    if (zoom >= 15) kinds.push('compound_branch');
    const view = S.map.getBounds();
    const key = kinds.join(',');
    if (entry.loadedBounds && entry.loadedBounds.contains(view) && entry.key === key) return;
    const fetchBounds = view.pad(0.3);
    if (entry.controller) entry.controller.abort();
    entry.controller = new AbortController();
    const collection = await tracked(api(`/map/party-organisations.geojson?bbox=${bboxParam(fetchBounds)}&kinds=${key}`,
      { signal: entry.controller.signal }));
    entry.group.clearLayers();
    entry.group.addData(collection);
    entry.loadedBounds = fetchBounds;
    entry.key = key;
  }

  /* Complaints, coloured by ticket state, red when overdue. Zoomed out they come as counts per grid or
   * micro-grid (one index-only count on the server instead of a million points); from POINT_ZOOM, or when
   * filtered, as single complaints. Either way they are clustered on a screen grid and drawn on one canvas:
   * thousands of DOM markers would slow every pan. */
  const POINT_ZOOM = 17;
  const POINT_LIMIT = 20000;
  const CLUSTER_CELL_PX = 48;
  function complaintColour(p) { return p.overdue ? OVERDUE_COLOUR : STATE_COLOURS[p.state] || '#7f8c8d'; }
  function filtersActive() {
    const f = S.filters;
    return Boolean(f.category.length || f.state || f.from || f.to || f.overdue);
  }
  function countText(count) { return count >= 10000 ? `${(count / 10000).toFixed(1)}万` : String(count); }

  /* Marks ({lat, lon, count, overdue, props}) merged per cell of a grid fixed to the world's pixels at a zoom, so
   * a pan keeps every cluster where it was. */
  function clusterMarks(entry, zoom) {
    const cache = entry.clusterCache;
    if (cache && cache.zoom === zoom && cache.version === entry.version) return cache.clusters;
    const cells = new Map();
    for (const mark of entry.marks) {
      const point = S.map.project([mark.lat, mark.lon], zoom);
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

  const ComplaintCanvas = L.Layer.extend({
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
      for (const cluster of clusterMarks(this._entry, map.getZoom())) {
        const x = cluster.x - origin.x;
        const y = cluster.y - origin.y;
        if (x < -30 || y < -30 || x > size.x + 30 || y > size.y + 30) continue;
        const single = cluster.count === 1 && cluster.members.length === 1;
        const radius = single ? 6 : cluster.count < 10 ? 13 : cluster.count < 100 ? 16 : cluster.count < 1000 ? 19 : 22;
        items.push({ x, y, radius, single, cluster });
      }
      context.font = 'bold 12px sans-serif';
      context.textAlign = 'center';
      context.textBaseline = 'middle';
      for (const item of items) {
        context.beginPath();
        context.arc(item.x, item.y, item.radius, 0, 2 * Math.PI);
        if (item.single) {
          context.fillStyle = complaintColour(item.cluster.members[0]);
          context.fill();
          context.lineWidth = 1.5; context.strokeStyle = '#fff'; context.stroke();
          continue;
        }
        context.fillStyle = 'rgba(230,126,34,.85)';
        context.fill();
        if (item.cluster.overdue) { context.lineWidth = 3; context.strokeStyle = OVERDUE_COLOUR; context.stroke(); }
        context.fillStyle = '#fff';
        context.fillText(countText(item.cluster.count), item.x, item.y);
      }
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

  function makeComplaintLayer() {
    const entry = { name: 'complaint', def: DEFS.complaint, points: [], marks: [], version: 0, loadedKey: '' };
    entry.layer = new ComplaintCanvas(entry);
    entry.group = entry.layer;
    return entry;
  }

  function complaintQuery(bounds) {
    const params = new URLSearchParams({ bbox: bboxParam(bounds), limit: String(POINT_LIMIT) });
    const f = S.filters;
    if (f.category.length) params.set('category', f.category.join(','));
    if (f.state) params.set('state', f.state);
    if (f.from) params.set('date_from', f.from);
    if (f.to) params.set('date_to', f.to);
    if (f.overdue) params.set('overdue', 'true');
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
    const key = `${source.kind}|${[...params.entries()].filter(([k]) => k !== 'bbox').join('&')}|${S.token || ''}`;
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

  async function loadComplaints(entry) {
    const zoom = S.map.getZoom();
    const wantPoints = S.visible.has('complaint') && zoom >= DEFS.complaint.minZoom;
    const wantHeat = $('#heat-toggle').checked;
    if (!wantPoints) S.map.removeLayer(entry.layer);
    if (!wantHeat && S.heat) S.map.removeLayer(S.heat);
    if (!wantPoints && !wantHeat) return;
    const changed = await fetchComplaints(entry, S.map.getBounds(), zoom);
    if (wantPoints) {
      if (S.map.hasLayer(entry.layer)) { if (changed) entry.layer.redraw(); } else entry.layer.addTo(S.map);
      if (entry.capped) status(`视野内投诉较多，仅显示最新 ${POINT_LIMIT} 条；放大地图可看全部。`);
    }
    if (wantHeat && (changed || !S.heat || !S.map.hasLayer(S.heat))) {
      const points = entry.marks.map((m) => [m.lat, m.lon, m.count]);
      // counts per unit weigh their spot: scale so that the busiest tenth of the spots saturates
      const counts = entry.marks.map((m) => m.count).sort((a, b) => a - b);
      const max = Math.max(1, counts.length ? counts[Math.floor(counts.length * 0.9)] : 1);
      if (!S.heat) S.heat = L.heatLayer(points, { radius: 18, blur: 16, maxZoom: 16, max });
      else { S.heat.setOptions({ max }); S.heat.setLatLngs(points); }
      S.heat.addTo(S.map);
    }
  }

  /* A click on a complaint opens it; on a cluster zooms in to it (or lists it at the deepest zoom). */
  function complaintAt(point) {
    const entry = S.layers.complaint;
    if (!S.map.hasLayer(entry.layer)) return false;
    const item = entry.layer.hit(point);
    if (!item) return false;
    const latlng = S.map.unproject([item.cluster.x, item.cluster.y], S.map.getZoom());
    if (item.single) { openComplaint(item.cluster.members[0]); return true; }
    if (S.map.getZoom() < S.map.getMaxZoom() && !(item.cluster.members.length === item.cluster.count && S.map.getZoom() >= 18)) {
      S.map.setView(latlng, Math.min(S.map.getZoom() + 2, S.map.getMaxZoom()));
      return true;
    }
    showPanel(el('h3', {}, `此处投诉 ${item.cluster.count} 件`), el('ul', { class: 'list', id: 'cluster-list' },
      ...item.cluster.members.map((p) => el('li', { 'data-complaint': p.id, class: p.overdue ? 'overdue' : '',
        onclick: () => openComplaint(p) }, `#${p.ticket_id || p.id} `, el('strong', {}, categoryName(p.category)),
      ` ${STATE_NAMES[p.state] || ''}`, p.overdue ? el('span', { class: 'badge red' }, '超期') : null))));
    return true;
  }

  /* ---------- hotspots: rates per unit with significant hot and cold spots ---------- */
  const HOT_CLASSES = {
    hot_99: ['#b2182b', '热点 99%'], hot_95: ['#ef8a62', '热点 95%'], hot_90: ['#fddbc7', '热点 90%'],
    cold_99: ['#2166ac', '冷点 99%'], cold_95: ['#67a9cf', '冷点 95%'], cold_90: ['#d1e5f0', '冷点 90%'],
  };

  function hotspotRoute() { return has('GET', '/analytics/hotspots') ? 'GET /analytics/hotspots' : null; }

  function periodParam() {
    const day = (d) => d.toISOString().slice(0, 10);
    const today = new Date();
    const yearAgo = new Date(today.getTime() - 365 * 86400000);
    return `${S.filters.from || day(yearAgo)}..${S.filters.to || day(today)}`;
  }

  function hotClass(p) {
    const bin = Number(p.confidence_bin);
    if (!bin) return '';
    const level = { 3: '99', 2: '95', 1: '90' }[Math.min(3, Math.abs(bin))];
    return `${bin > 0 ? 'hot' : 'cold'}_${level}`;
  }

  function rateColour(rate, max) {
    const t = max > 0 ? Math.min(1, rate / max) : 0;
    const shades = ['#fff5eb', '#fdd0a2', '#fdae6b', '#fd8d3c', '#e6550d', '#a63603'];
    return shades[Math.min(shades.length - 1, Math.floor(t * shades.length))];
  }

  async function loadHotspots() {
    const on = $('#hotspot-toggle').checked || $('#planner-toggle').checked;
    if (S.hotspots) S.map.removeLayer(S.hotspots);
    if (!on) { $('#hotspot-note').textContent = ''; return; }
    const route = hotspotRoute();
    if (!route) { $('#hotspot-note').textContent = '本部署未提供热点分析服务。'; return; }
    const path = route.split(' ')[1];
    const params = new URLSearchParams({ level: $('#hotspot-level').value, format: 'geojson', value: 'rate',
      period: periodParam() });
    if (S.filters.category.length) params.set('categories', S.filters.category.join(','));
    try {
      const collection = await tracked(api(`${path}?${params}`));
      const features = collection.features || [];
      const rateOf = (p) => p.rate_per_1000 ?? p.complaints ?? 0;
      const max = Math.max(0, ...features.map((f) => rateOf(f.properties)));
      S.hotspots = L.geoJSON(collection, {
        interactive: false,
        style: (feature) => {
          const p = feature.properties;
          const cls = HOT_CLASSES[hotClass(p)];
          return { color: cls ? cls[0] : '#999', weight: cls ? 3 : 0.5, fillColor: rateColour(rateOf(p), max),
            fillOpacity: 0.6 };
        },
      }).addTo(S.map);
      const hot = features.filter((f) => hotClass(f.properties).startsWith('hot')).length;
      const cold = features.filter((f) => hotClass(f.properties).startsWith('cold')).length;
      $('#hotspot-note').textContent = `${periodParam()}：${features.length} 个统计单元（每千户投诉率着色），` +
        `显著热点 ${hot} 个、冷点 ${cold} 个（描边颜色）。`;
      $('#hotspot-note').dataset.units = features.length;
    } catch (error) {
      $('#hotspot-note').textContent = `热点分析失败：${error.message}`;
    }
  }

  /* ---------- planners' overlay: coverage figures of the area in view ---------- */
  function renderLegend() {
    const legend = $('#planner-legend');
    legend.replaceChildren(
      ...Object.entries(MODE_NAMES).map(([mode, name]) => el('div', {}, el('i', { style: `background:${MODE_COLOURS[mode]}` }), name)),
      el('div', {}, el('i', { style: 'background:#fff;border:2px dashed #4d4d4d' }), '老旧小区（虚线边框）'),
      el('div', {}, el('i', { style: `background:${MODE_COLOURS.none};opacity:.8` }), '物业服务空白（无物业，或老旧小区自管）'),
      ...Object.values(HOT_CLASSES).map(([colour, name]) => el('div', {}, el('i', { style: `background:#fff;border:3px solid ${colour}` }), name)),
    );
  }

  function updateCoverage() {
    const box = $('#coverage-figures');
    if (!$('#planner-toggle').checked) { box.replaceChildren(); return; }
    const entry = S.layers.compound;
    if (S.map.getZoom() < DEFS.compound.minZoom) {
      box.replaceChildren(el('p', { class: 'hint' }, '放大地图以计算视野内的覆盖率。'));
      return;
    }
    const view = S.map.getBounds();
    const byMode = {};
    let total = 0, area = 0, old = 0, oldCovered = 0, gaps = 0;
    entry.group.eachLayer((layer) => {
      const p = layer.feature.properties;
      if (!view.contains(layer.getBounds().getCenter())) return;
      const row = byMode[p.management_mode] || (byMode[p.management_mode] = { count: 0, area: 0 });
      row.count += 1; row.area += p.floor_area_m2 || 0;
      total += 1; area += p.floor_area_m2 || 0;
      if (p.is_old_estate) { old += 1; if (p.management_mode !== 'none') oldCovered += 1; }
      if (p.management_mode === 'none' || (p.is_old_estate && p.management_mode === 'self_managed')) gaps += 1;
    });
    const pct = (a, b) => (b ? `${(100 * a / b).toFixed(1)}%` : '—');
    const professional = (byMode.professional || { area: 0 }).area;
    box.replaceChildren(
      el('h4', {}, '视野内覆盖情况'),
      el('p', { id: 'coverage-summary' },
        `小区 ${total} 个；专业化物业覆盖率（按建筑面积）${pct(professional, area)}；`,
        `老旧小区 ${old} 个，物业服务覆盖 ${pct(oldCovered, old)}；服务空白 ${gaps} 个。`),
      el('table', {},
        el('tr', {}, el('th', {}, '模式'), el('th', {}, '小区'), el('th', {}, '面积 万m²'), el('th', {}, '面积占比')),
        ...Object.keys(MODE_NAMES).map((mode) => {
          const row = byMode[mode] || { count: 0, area: 0 };
          return el('tr', { 'data-mode': mode }, el('td', {}, MODE_NAMES[mode]), el('td', {}, row.count),
            el('td', {}, (row.area / 10000).toFixed(1)), el('td', {}, pct(row.area, area)));
        })),
    );
  }

  /* ---------- redraw on every move ---------- */
  async function tracked(promise) {
    S.loading += 1;
    try { return await promise; } finally { S.loading -= 1; }
  }

  /* Moves come in bursts (a drag, a wheel spin): fetch once the map has been still for a moment; each layer
   * aborts its own stale request when a newer one starts. */
  let refreshTimer = null;
  function refresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => { refreshTimer = null; refreshNow(); }, 25);
  }

  async function refreshNow() {
    S.pending = (S.pending || 0) + 1;
    try {
      S.timings = {};
      const tasks = ORDER.map(async (name) => {
        const entry = S.layers[name];
        const started = performance.now();
        try {
          if (name === 'building') return await loadBuildings(entry);
          if (name === 'party') return await loadParty(entry);
          if (name === 'complaint') return await loadComplaints(entry);
          return await loadVector(entry);
        } finally {
          S.timings[name] = Math.round(performance.now() - started);
        }
      });
      const results = await Promise.allSettled(tasks);
      await tilesDrawn();
      const failed = results.filter((r) => r.status === 'rejected' && r.reason.name !== 'AbortError');
      if (failed.length) status(`部分图层加载失败：${failed[0].reason.message}`);
      else if (!(S.layers.complaint.capped && S.map.hasLayer(S.layers.complaint.layer))) status('');
      updateCoverage();
      updateLayerNotes();
    } finally {
      S.pending -= 1;
      S.lastDraw = performance.now();
      S.drawCount = (S.drawCount || 0) + 1;
      writeHash();
      if (!S.pending && !refreshTimer) S.drawWaiters.splice(0).forEach((resolve) => resolve(S.lastDraw));
    }
  }

  function updateLayerNotes() {
    const zoom = S.map.getZoom();
    for (const name of ORDER) {
      const note = document.querySelector(`[data-layer-note="${name}"]`);
      if (note) note.textContent = zoom < (DEFS[name].minZoom || 0) ? `≥${DEFS[name].minZoom}级` : '';
    }
  }

  function buildLayerList() {
    const list = $('#layer-list');
    list.replaceChildren(...ORDER.map((name) => el('label', { class: 'layer-row' },
      el('input', { type: 'checkbox', 'data-layer': name, checked: S.visible.has(name) ? 'checked' : null,
        onchange: (event) => {
          if (event.target.checked) S.visible.add(name); else S.visible.delete(name);
          refresh();
        } }),
      el('span', { class: 'swatch', style: `border-color:${DEFS[name].colour}` }),
      DEFS[name].title,
      el('span', { class: 'zoom-note', 'data-layer-note': name }))));
  }

  /* ---------- who is responsible here ---------- */
  function showPanel(...children) {
    $('#panel-body').replaceChildren(...children);
    $('#panel').hidden = false;
    S.map.invalidateSize();
  }

  function contactText(contact) {
    if (!contact) return null;
    return el('span', { class: 'contact' }, [contact.name, contact.phone].filter(Boolean).join(' '));
  }

  function renderResponsibility(r) {
    const rows = [];
    const add = (term, ...value) => rows.push(el('dt', {}, term), el('dd', {}, ...value));
    if (r.district) add('区县', r.district.name);
    add('街道办事处', r.street.name, el('span', { class: 'muted' }, ` ${r.street.code}`));
    if (r.community) add('社区', r.community.name, r.community.office_phone ? el('span', { class: 'contact' }, ` ☎ ${r.community.office_phone}`) : null);
    if (r.grid) add('网格', r.grid.name, el('span', { class: 'muted' }, ` ${r.grid.code}`));
    if (r.grid) {
      add('网格员', r.grid_workers.length ? el('div', {}, ...r.grid_workers.map((w) => el('div', { class: 'worker' },
        w.contact ? contactText(w.contact) : '网格员',
        w.is_party_member ? el('span', { class: 'badge party' }, '党员') : null,
        w.is_part_time ? ` 兼职（${w.property_company || '物业项目经理'}）` : ' 专职'))) : el('span', { class: 'muted' }, '未配备'));
    }
    if (r.micro_grid) add('微网格', r.micro_grid.name);
    if (r.compound) {
      add('小区', el('strong', {}, r.compound.name), r.compound.is_old_estate ? el('span', { class: 'badge' }, '老旧小区') : null,
        el('div', { class: 'muted' }, `${MODE_NAMES[r.compound.management_mode] || r.compound.management_mode} · ${r.compound.households} 户 · ${r.compound.build_year} 年`));
    }
    if (r.building) add('楼栋', `${r.building.number}号楼 · ${r.building.floors} 层 ${r.building.households} 户`,
      r.building.leader ? el('div', {}, '楼栋长 ', contactText(r.building.leader)) : null);
    if (r.property_company) {
      const [label, cls] = STANDING[r.property_company.standing] || [r.property_company.standing, ''];
      add('物业企业', r.property_company.name, ' ', el('span', { class: `badge ${cls}`, 'data-standing': r.property_company.standing }, label),
        r.property_company.evaluation_period ? el('span', { class: 'muted' }, ` ${r.property_company.evaluation_period}`) : null,
        r.property_company.contact ? el('div', {}, contactText(r.property_company.contact)) : null);
    } else if (r.compound) {
      add('物业企业', el('span', { class: 'muted' }, '无'));
    }
    if (r.compound) {
      const oc = r.owners_committee;
      add('业主委员会', oc ? el('span', {}, `${oc.member_count} 人，党员 ${oc.party_member_count} 人`,
        oc.chair ? el('div', {}, '主任 ', el('span', { class: 'contact' }, oc.chair.name)) : null)
        : el('span', { class: 'muted' }, '未成立'));
    }
    const parties = r.party_organisations.map((org) => el('div', { class: 'party' },
      el('span', { class: 'badge party' }, PARTY_KINDS[org.kind] || org.kind), ' ', org.name,
      org.secretary ? el('div', {}, '书记 ', contactText(org.secretary)) : null));
    add('党组织', parties.length ? el('div', {}, ...parties) : el('span', { class: 'muted' }, '无'));
    return el('div', { id: 'responsibility' },
      el('h3', {}, '这里谁负责'),
      el('dl', {}, ...rows),
      r.contacts_shown ? null : el('p', { class: 'hint' }, '联系方式仅对登录的工作人员显示。'));
  }

  async function askResponsibility(latlng) {
    if (S.marker) S.marker.remove();
    S.marker = L.circleMarker(latlng, { radius: 7, color: '#8b1a1a', weight: 3, fillOpacity: 0.2 }).addTo(S.map);
    try {
      const answer = await api(`/responsibility?lon=${latlng.lng.toFixed(6)}&lat=${latlng.lat.toFixed(6)}`);
      showPanel(renderResponsibility(answer));
    } catch (error) {
      showPanel(el('h3', {}, '这里谁负责'), el('p', {}, error.status === 404 ? '此处不在任何街道的管辖范围内。' : error.message));
    }
  }

  /* ---------- search ---------- */
  const KIND_NAMES = { compound: '小区', building: '楼栋', street: '街道', community: '社区', grid: '网格',
    micro_grid: '微网格', complaint: '工单' };
  let searchTimer = null;
  let searchController = null;

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
    if (hit.kind === 'complaint') S.map.setView([hit.lat, hit.lon], 18);
    else S.map.fitBounds([[miny, minx], [maxy, maxx]], { maxZoom: hit.kind === 'building' ? 18 : 17 });
    if (S.found) S.found.remove();
    S.found = L.marker([hit.lat, hit.lon], { title: hit.name }).addTo(S.map);
    if (hit.kind === 'complaint') openTicketOfComplaint(Number(hit.code), hit.lon, hit.lat);
    else askResponsibility(L.latLng(hit.lat, hit.lon));
  }

  /* ---------- filters ---------- */
  async function buildFilters() {
    const categories = await api('/map/categories.json');
    $('#filter-category').replaceChildren(...categories.map((c) => el('option', { value: c.code,
      selected: S.filters.category.includes(c.code) ? 'selected' : null }, `${c.name_zh}（${c.major_class}）`)));
    $('#filter-state').append(...Object.entries(STATE_NAMES).map(([value, name]) => el('option', { value }, name)));
    $('#filter-state').value = S.filters.state;
    $('#filter-from').value = S.filters.from;
    $('#filter-to').value = S.filters.to;
    $('#filter-overdue').checked = S.filters.overdue;
    $('#filter-apply').addEventListener('click', () => {
      S.filters.category = [...$('#filter-category').selectedOptions].map((option) => option.value);
      S.filters.state = $('#filter-state').value;
      S.filters.from = $('#filter-from').value;
      S.filters.to = $('#filter-to').value;
      S.filters.overdue = $('#filter-overdue').checked;
      if (!S.visible.has('complaint') && !$('#heat-toggle').checked) {
        S.visible.add('complaint');
        document.querySelector('[data-layer="complaint"]').checked = true;
      }
      refresh();
      loadHotspots();
    });
    $('#filter-clear').addEventListener('click', () => {
      S.filters = { category: [], state: '', from: '', to: '', overdue: false };
      [...$('#filter-category').options].forEach((option) => { option.selected = false; });
      $('#filter-state').value = ''; $('#filter-from').value = ''; $('#filter-to').value = '';
      $('#filter-overdue').checked = false;
      refresh();
    });
  }

  /* ---------- logging in and the work tools ---------- */
  function showAccount() {
    const loggedIn = !!S.token;
    $('#login-form').hidden = loggedIn;
    $('#whoami').hidden = !loggedIn;
    $('#logout-button').hidden = !loggedIn;
    $('#whoami').textContent = loggedIn ? `${S.username}（${ROLE_NAMES[S.role] || S.role}）` : '';
    $('#work-tools').hidden = !loggedIn;
    $('#work-login-hint').hidden = loggedIn;
    $('#my-tickets-box').hidden = !(loggedIn && has('GET', '/tickets'));
    $('#assign-box').hidden = !(loggedIn && ['street', 'admin', 'community'].includes(S.role) && has('POST', '/tickets/assign'));
    $('#review-box').hidden = !(loggedIn && has('GET', '/complaints/review') && has('POST', '/complaints/{complaint_id}/placement')
      && ['street', 'admin', 'community', 'grid_worker'].includes(S.role));
  }

  async function login(event) {
    event.preventDefault();
    if (!has('POST', '/auth/login')) { status('本部署未启用登录服务。'); return; }
    try {
      const answer = await api('/auth/login', { method: 'POST', body: { username: $('#login-user').value, password: $('#login-password').value } });
      S.token = answer.access_token; S.role = answer.role; S.username = $('#login-user').value;
      S.me = has('GET', '/auth/me') ? await api('/auth/me') : { role: S.role, scope: [] };
      sessionStorage.setItem('gridgov.me', JSON.stringify(S.me));
      sessionStorage.setItem('gridgov.token', S.token);
      sessionStorage.setItem('gridgov.role', S.role);
      sessionStorage.setItem('gridgov.username', S.username);
      $('#login-password').value = '';
      status(`已登录：${S.username}`);
      showAccount();
      selectTab('work');
      S.layers.complaint.loadedKey = '';
      refresh();
      afterLogin();
    } catch (error) {
      status(`登录失败：${error.message}`);
    }
  }

  async function logout() {
    if (has('POST', '/auth/logout')) { try { await api('/auth/logout', { method: 'POST' }); } catch (error) { /* token may already be gone */ } }
    S.token = null; S.role = null; S.username = null;
    sessionStorage.removeItem('gridgov.me');
    sessionStorage.removeItem('gridgov.token'); sessionStorage.removeItem('gridgov.role'); sessionStorage.removeItem('gridgov.username');
    showAccount();
    S.layers.complaint.loadedKey = '';
    refresh();
  }

  function afterLogin() {
    if (!$('#my-tickets-box').hidden) loadMyTickets();
    if (!$('#review-box').hidden) loadReviewQueue();
  }

  const ticketsOf = (answer) => (Array.isArray(answer) ? answer : answer.items || answer.tickets || answer.features || []);
  const ticketProps = (ticket) => ticket.properties ? Object.assign({ id: ticket.id }, ticket.properties) : ticket;

  function ticketLine(ticket, onClick) {
    const t = ticketProps(ticket);
    return el('li', { class: t.overdue ? 'overdue' : '', 'data-ticket': t.id, onclick: onClick },
      `#${t.id} `, el('strong', {}, t.category_zh || t.category || t.category_code || ''),
      ` ${STATE_NAMES[t.state] || t.state}`, t.overdue ? el('span', { class: 'badge red' }, '超期') : null);
  }

  async function loadMyTickets() {
    const list = $('#my-tickets');
    try {
      // a grid worker's own tickets are the open ones of its grids; other roles see what is assigned to them
      const query = S.role === 'grid_worker' ? 'state=open&sort=due&limit=200' : 'state=open&mine=true&sort=due&limit=200';
      const answer = await api(`/tickets?${query}`);
      const tickets = ticketsOf(answer);
      list.replaceChildren(...(tickets.length ? tickets.map((t) => ticketLine(t, () => openTicket(ticketProps(t).id)))
        : [el('li', { class: 'muted' }, '没有工单')]));
    } catch (error) {
      list.replaceChildren(el('li', { class: 'muted' }, error.message));
    }
  }

  async function openComplaint(p) {
    if (S.token && p.ticket_id && has('GET', '/tickets/{ticket_id}')) { openTicket(p.ticket_id); return; }
    showPanel(el('h3', {}, `投诉 #${p.id}`), el('dl', {},
      el('dt', {}, '类别'), el('dd', {}, categoryName(p.category)),
      el('dt', {}, '状态'), el('dd', {}, STATE_NAMES[p.state] || '—', p.overdue ? el('span', { class: 'badge red' }, '超期') : null),
      el('dt', {}, '上报时间'), el('dd', {}, (p.reported_at || '').slice(0, 16).replace('T', ' '))),
    S.token ? null : el('p', { class: 'hint' }, '登录后可查看和处理工单。'));
  }

  function categoryName(code) {
    const option = document.querySelector(`#filter-category option[value="${code}"]`);
    return option ? option.textContent : code;
  }

  /* The ticket of a complaint found by number: the complaint points around it carry their ticket ids. */
  async function openTicketOfComplaint(complaintId, lon, lat) {
    try {
      const d = 0.001;
      const around = await api(`/map/complaints.geojson?bbox=${(lon - d).toFixed(6)},${(lat - d).toFixed(6)},${(lon + d).toFixed(6)},${(lat + d).toFixed(6)}&limit=50000`);
      const found = around.features.map((f) => f.properties).find((p) => p.id === complaintId);
      if (found && found.ticket_id) openTicket(found.ticket_id);
      else if (found) openComplaint(found);
    } catch (error) { status(error.message); }
  }

  async function openTicket(id) {
    let ticket;
    try { ticket = await api(`/tickets/${id}`); } catch (error) { showPanel(el('p', {}, error.message)); return; }
    const t = ticketProps(ticket);
    if (!S.workflow && has('GET', '/tickets/workflow')) S.workflow = await api('/tickets/workflow');
    const lon = t.lon ?? (t.location && t.location.coordinates ? t.location.coordinates[0] : null) ?? (ticket.geometry ? ticket.geometry.coordinates[0] : null);
    const lat = t.lat ?? (t.location && t.location.coordinates ? t.location.coordinates[1] : null) ?? (ticket.geometry ? ticket.geometry.coordinates[1] : null);
    if (lon !== null && lat !== null && lon !== undefined) S.map.setView([lat, lon], Math.max(S.map.getZoom(), 17));
    const actions = (S.workflow || []).filter((a) => a.from.includes(t.state) && a.roles.includes(S.role));
    const form = el('form', { id: 'transition-form' },
      el('label', {}, '操作', el('select', { id: 'transition-action' }, ...actions.map((a) => el('option', { value: a.action },
        a.title_zh || ACTION_NAMES[a.action] || a.action)))),
      el('label', {}, '说明', el('textarea', { id: 'transition-note', placeholder: '处置情况说明' })),
      el('label', {}, '照片', el('input', { id: 'transition-photo', type: 'file', accept: 'image/*' })),
      el('button', { type: 'submit', id: 'transition-submit' }, '提交'),
      el('p', { id: 'transition-result', class: 'hint' }));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const result = $('#transition-result');
      try {
        await api(`/tickets/${t.id}/transitions`, { method: 'POST', body: {
          action: $('#transition-action').value, note: $('#transition-note').value, version: t.version } });
        const file = $('#transition-photo').files[0];
        if (file) {
          const data = new FormData();
          data.append('file', file);
          data.append('note', $('#transition-note').value);
          await api(`/tickets/${t.id}/photos`, { method: 'POST', body: data });
        }
        result.textContent = '已提交';
        S.layers.complaint.loadedKey = '';
        refresh();
        loadMyTickets();
        openTicket(t.id);
      } catch (error) {
        result.textContent = `提交失败：${error.message}`;
      }
    });
    const titles = Object.fromEntries((S.workflow || []).map((a) => [a.action, a.title_zh]));
    const history = (t.history || []).map((e) => el('li', {},
      `${(e.at || '').slice(0, 16).replace('T', ' ')} ${titles[e.action] || ACTION_NAMES[e.action] || e.action}` +
      `${e.to_state ? ` → ${STATE_NAMES[e.to_state] || e.to_state}` : ''} ${e.note || ''}`));
    const photos = (t.photos || []).length;
    showPanel(el('div', { id: 'ticket', 'data-ticket': t.id, 'data-state': t.state },
      el('h3', {}, `工单 #${t.id}`),
      el('dl', {},
        el('dt', {}, '类别'), el('dd', {}, t.category_zh || t.category || categoryName(t.category_code)),
        el('dt', {}, '状态'), el('dd', { id: 'ticket-state' }, STATE_NAMES[t.state] || t.state, t.overdue ? el('span', { class: 'badge red' }, '超期') : null),
        el('dt', {}, '描述'), el('dd', {}, t.description || ''),
        el('dt', {}, '地址'), el('dd', {}, t.address || ''),
        el('dt', {}, '期限'), el('dd', {}, (t.due_at || '').slice(0, 16).replace('T', ' ')),
        el('dt', {}, '照片'), el('dd', { id: 'ticket-photos' }, `${photos} 张`)),
      actions.length ? form : el('p', { class: 'hint' }, '当前状态下没有可执行的操作。'),
      history.length ? el('div', {}, el('h4', {}, '处理记录'), el('ol', { class: 'history' }, ...history)) : null));
  }

  const ACTION_NAMES = {
    register: '立案', reject: '不予立案', dispatch: '派遣', accept: '接单', start: '开始处置', respond: '响应',
    handle: '处置完成', resolve: '处置完成', send_back: '退回', close: '结案', verify: '核查结案', reopen: '重新打开',
    merge: '合并', rate: '评价', assign: '派单', report: '上报', note: '备注', photo: '照片',
  };

  /* street office: draw or pick an area, list its tickets, assign them in bulk */
  function setMode(mode) {
    S.mode = mode;
    const container = S.map.getContainer();
    container.classList.remove('mode-draw', 'mode-place', 'mode-pick');
    if (mode !== 'inspect') container.classList.add(`mode-${mode}`);
    if (mode === 'draw') S.map.doubleClickZoom.disable(); else S.map.doubleClickZoom.enable();
  }

  function startDrawing() {
    clearArea();
    S.drawn = { vertices: [], line: L.polyline([], { color: '#c0392b', dashArray: '5 4' }).addTo(S.map) };
    setMode('draw');
    $('#finish-area').hidden = false;
    $('#clear-area').hidden = false;
    $('#area-summary').textContent = '在地图上依次点击范围的各个顶点，然后点“完成范围”。';
  }

  function addVertex(latlng) {
    S.drawn.vertices.push(latlng);
    S.drawn.line.setLatLngs(S.drawn.vertices);
  }

  function finishDrawing() {
    if (!S.drawn || S.drawn.vertices.length < 3) { $('#area-summary').textContent = '范围至少需要三个顶点。'; return; }
    setMode('inspect');
    S.drawn.line.remove();
    S.drawn.polygon = L.polygon(S.drawn.vertices, { color: '#c0392b', weight: 2, fillOpacity: 0.08, interactive: false }).addTo(S.map);
    $('#finish-area').hidden = true;
    const ring = S.drawn.vertices.map((p) => [Number(p.lng.toFixed(6)), Number(p.lat.toFixed(6))]);
    ring.push(ring[0]);
    loadAreaTickets({ polygon: JSON.stringify({ type: 'Polygon', coordinates: [ring] }) });
  }

  async function pickGrid(latlng) {
    setMode('inspect');
    try {
      const answer = await api(`/responsibility?lon=${latlng.lng.toFixed(6)}&lat=${latlng.lat.toFixed(6)}`);
      if (!answer.grid) throw new Error('此处不在任何网格内');
      const collection = await api(`/layers/grid.geojson?parent=${answer.community.code}`);
      const feature = collection.features.find((f) => f.properties.code === answer.grid.code);
      clearArea();
      S.drawn = { polygon: L.geoJSON(feature, { style: { color: '#c0392b', weight: 2, fillOpacity: 0.08 }, interactive: false }).addTo(S.map) };
      $('#clear-area').hidden = false;
      loadAreaTickets({ grid: answer.grid.code }, answer.grid.name);
    } catch (error) {
      $('#area-summary').textContent = error.message;
    }
  }

  function clearArea() {
    if (S.drawn) { if (S.drawn.line) S.drawn.line.remove(); if (S.drawn.polygon) S.drawn.polygon.remove(); }
    S.drawn = null;
    setMode('inspect');
    $('#finish-area').hidden = true;
    $('#clear-area').hidden = true;
    $('#area-tickets').replaceChildren();
    $('#area-summary').textContent = '';
    $('#assign-result').textContent = '';
    $('#assign-button').disabled = true;
  }

  async function loadAreaTickets(area, label) {
    const params = new URLSearchParams(Object.assign({ state: 'reported,registered,dispatched', limit: '1000' }, area));
    try {
      const tickets = ticketsOf(await api(`/tickets?${params}`)).map(ticketProps);
      S.areaTickets = tickets;
      S.areaQuery = area;
      $('#area-summary').textContent = `${label || '所画范围'}内待派工单 ${tickets.length} 件。`;
      $('#area-tickets').replaceChildren(...tickets.slice(0, 200).map((t) => ticketLine(t, () => openTicket(t.id))));
      $('#assign-button').disabled = tickets.length === 0;
      await loadAssignees(tickets);
    } catch (error) {
      $('#area-summary').textContent = `查询失败：${error.message}`;
    }
  }

  /* Who may receive the tickets of the area: the street's departments, the communities and the property
   * companies the tickets lie in (the tickets service checks each choice against every ticket). */
  async function loadAssignees(tickets) {
    const select = $('#assignee');
    const options = [];
    const streets = [...new Set(tickets.map((t) => t.street_code).filter(Boolean))];
    for (const street of streets) {
      for (const department of ['综合行政执法中队', '城市管理办公室', '平安建设办公室']) {
        options.push({ kind: 'street_department', code: street, department, name: `街道 · ${department}` });
      }
    }
    const communities = [...new Set(tickets.map((t) => t.community_code).filter(Boolean))];
    const communityNames = {};
    S.layers.community.group.eachLayer((layer) => { communityNames[layer.feature.properties.code] = layer.feature.properties.name; });
    for (const code of communities) options.push({ kind: 'community', code, name: `社区 · ${communityNames[code] || code}` });
    const companyIds = [...new Set(tickets.map((t) => t.property_company_id).filter((id) => id !== null && id !== undefined))];
    if (companyIds.length) {
      try {
        for (const company of await api(`/map/property-companies.json?ids=${companyIds.slice(0, 500).join(',')}`)) {
          const standing = STANDING[company.standing] ? STANDING[company.standing][0] : company.standing;
          options.push({ kind: 'property_company', code: String(company.id), name: `物业 · ${company.name}（${standing}）` });
        }
      } catch (error) { status(error.message); }
    }
    select.replaceChildren(...options.map((o) => el('option', { value: JSON.stringify({ kind: o.kind, code: o.code, department: o.department }) }, o.name)));
  }

  async function assignArea() {
    if (!S.areaTickets || !S.areaTickets.length) return;
    if (!$('#assignee').value) { $('#area-summary').textContent = '请选择派给谁。'; return; }
    const assignee = JSON.parse($('#assignee').value);
    try {
      const answer = await api('/tickets/assign', { method: 'POST', body: {
        ticket_ids: S.areaTickets.map((t) => t.id),
        versions: Object.fromEntries(S.areaTickets.map((t) => [t.id, t.version])),
        assignee, note: '地图区域批量派单',
      } });
      const count = answer.assigned;
      $('#assign-result').textContent = `已派单 ${count} 件。`;
      $('#assign-result').dataset.assigned = count;
      S.layers.complaint.loadedKey = '';
      refresh();
      loadAreaTickets(S.areaQuery);
    } catch (error) {
      $('#assign-result').textContent = error.status === 409 ? '工单已被他人修改，请刷新后重试。' : `派单失败：${error.message}`;
    }
  }

  /* reviewer: place unmatched complaints from the review queue by clicking the map */
  async function loadReviewQueue() {
    const list = $('#review-queue');
    try {
      const items = await api('/complaints/review?limit=200');
      S.reviewQueue = items;
      list.replaceChildren(...(items.length ? items.map((item) => el('li', { 'data-complaint': item.id, onclick: () => startPlacing(item) },
        `#${item.id} `, el('strong', {}, categoryName(item.category_code)), ' ', item.address || item.description || '',
        item.review_reason ? el('div', { class: 'muted' }, item.review_reason) : null))
        : [el('li', { class: 'muted' }, '没有待审核的投诉')]));
    } catch (error) {
      list.replaceChildren(el('li', { class: 'muted' }, error.message));
    }
  }

  function startPlacing(item) {
    S.placing = item;
    setMode('place');
    $('#review-hint').textContent = `在地图上点击投诉 #${item.id} 的位置（${item.address || item.description || ''}）。`;
    if (item.lon !== null && item.lon !== undefined && item.lat !== null) S.map.setView([item.lat, item.lon], Math.max(S.map.getZoom(), 17));
  }

  async function place(latlng) {
    const item = S.placing;
    try {
      const answer = await api(`/complaints/${item.id}/placement`, { method: 'POST',
        body: { lon: Number(latlng.lng.toFixed(6)), lat: Number(latlng.lat.toFixed(6)) } });
      $('#review-hint').textContent = `投诉 #${item.id} 已定位到微网格 ${answer.micro_grid_code}。`;
      $('#review-hint').dataset.placed = item.id;
      S.placing = null;
      setMode('inspect');
      S.layers.complaint.loadedKey = '';
      refresh();
      loadReviewQueue();
    } catch (error) {
      $('#review-hint').textContent = `定位失败：${error.message}`;
    }
  }

  /* ---------- tabs ---------- */
  function selectTab(name) {
    document.querySelectorAll('.tabs button').forEach((b) => b.classList.toggle('active', b.dataset.tab === name));
    document.querySelectorAll('.pane').forEach((p) => p.classList.toggle('active', p.dataset.pane === name));
    writeHash();
  }

  /* ---------- start ---------- */
  async function start() {
    const started = performance.now();
    const hash = readHash();
    // the streets are fetched while the configuration is, when the view has to be fitted to them
    const streetsPromise = hash.view ? null : tracked(api('/layers/street.geojson'));
    S.config = await api('/map/config.json');
    S.routes = new Set(S.config.routes);
    S.renderer = L.canvas({ padding: 0.3 });
    S.map = L.map('map', { preferCanvas: true, zoomControl: true, maxZoom: 19, minZoom: 5 });
    if (S.config.base_tile_url) {
      L.tileLayer(S.config.base_tile_url, { attribution: S.config.base_tile_attribution, maxZoom: 19 }).addTo(S.map);
    }
    S.map.createPane('complaints').style.zIndex = 450; // above the boundaries, below popups and markers
    S.map.getPane('complaints').style.pointerEvents = 'none';
    S.map.attributionControl.setPrefix('gridgov · Leaflet');
    L.control.scale({ imperial: false }).addTo(S.map);
    for (const name of ORDER) {
      if (name === 'party') S.layers.party = makePartyLayer();
      else if (name === 'complaint') S.layers.complaint = makeComplaintLayer();
      else S.layers[name] = makeVectorLayer(name);
    }
    S.layers.building.tiles = makeBuildingTiles();
    buildLayerList();
    renderLegend();
    if (hash.tab) selectTab(hash.tab);
    if (hash.planner) $('#planner-toggle').checked = true;
    if (hash.hotLevel) $('#hotspot-level').value = hash.hotLevel;

    if (hash.view) {
      S.map.setView([hash.view.lat, hash.view.lon], hash.view.zoom);
    } else {
      const streets = await streetsPromise;
      S.layers.street.group.addData(streets);
      S.layers.street.loadedKey = 'all';
      const bounds = S.layers.street.group.getBounds();
      if (bounds.isValid()) S.map.fitBounds(bounds); else S.map.setView([36.2, 117.1], 12);
    }
    S.map.on('moveend', refresh);
    S.map.on('click', (event) => {
      if (S.mode === 'draw') addVertex(event.latlng);
      else if (S.mode === 'pick') pickGrid(event.latlng);
      else if (S.mode === 'place' && S.placing) place(event.latlng);
      else if (!complaintAt(event.containerPoint)) askResponsibility(event.latlng);
    });
    S.map.on('mousemove', (event) => {
      const layer = S.layers.complaint.layer;
      const over = S.mode === 'inspect' && S.map.hasLayer(layer) && layer.hit(event.containerPoint) !== null;
      S.map.getContainer().classList.toggle('over-complaint', over);
    });
    await refreshNow();
    S.firstViewMs = performance.now() - started;
    S.readyAt = performance.now(); // since navigation start: the first view is usable
    S.ready = true;
    document.body.dataset.ready = '1';

    buildFilters().catch((error) => status(error.message));
    showAccount();
    if (S.token) afterLogin();
    $('#login-form').addEventListener('submit', login);
    $('#logout-button').addEventListener('click', logout);
    $('#panel-close').addEventListener('click', () => { $('#panel').hidden = true; S.map.invalidateSize(); });
    $('#search').addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 200); });
    $('#search').addEventListener('keydown', (event) => {
      if (event.key === 'Enter') { event.preventDefault(); clearTimeout(searchTimer); runSearch(); }
      if (event.key === 'Escape') $('#search-results').hidden = true;
    });
    document.querySelectorAll('.tabs button').forEach((b) => b.addEventListener('click', () => selectTab(b.dataset.tab)));
    $('#heat-toggle').addEventListener('change', refresh);
    $('#hotspot-toggle').addEventListener('change', () => { loadHotspots(); writeHash(); });
    $('#hotspot-level').addEventListener('change', () => { loadHotspots(); writeHash(); });
    $('#planner-toggle').addEventListener('change', () => {
      if ($('#planner-toggle').checked) {
        S.visible.add('compound');
        document.querySelector('[data-layer="compound"]').checked = true;
      }
      S.layers.compound.group.setStyle(compoundStyle);
      loadHotspots();
      refresh();
    });
    if (hash.planner) loadHotspots();
    $('#my-tickets-refresh').addEventListener('click', loadMyTickets);
    $('#review-refresh').addEventListener('click', loadReviewQueue);
    $('#draw-area').addEventListener('click', startDrawing);
    $('#pick-grid').addEventListener('click', () => { clearArea(); setMode('pick'); $('#area-summary').textContent = '在地图上点击要派单的网格。'; });
    $('#finish-area').addEventListener('click', finishDrawing);
    $('#clear-area').addEventListener('click', clearArea);
    $('#assign-button').addEventListener('click', assignArea);
    window.addEventListener('hashchange', () => {
      const again = readHash();
      if (again.view) S.map.setView([again.view.lat, again.view.lon], again.view.zoom);
    });
  }

  start().catch((error) => { status(`地图启动失败：${error.message}`); console.error(error); });
})();
