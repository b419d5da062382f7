/* gridgov map workspace: layers, "who is responsible here", search, filters, work from the map, planners'
 * overlay. Everything is fetched from the app's own API; nothing leaves the server.
 *
 * This module starts the page and wires the parts together; each part lives in its own module and the parts
 * talk through bus.js. webmap/README.md describes the layout. */
import { api, setRoutes } from './api.js';
import { status } from './dom.js';
import { installFacade } from './facade.js';
import { initHash, readHash } from './hash.js';
import { buildingTilesDrawn, loadBuildings, makeBuildingLayer } from './layers/buildings.js';
import { clickComplaints, complaintNotice, loadComplaints, makeComplaintLayer, overComplaint } from './layers/complaints.js';
import { basemapDrawn, fetchBasemap, loadBasemap, makeBasemapLayer } from './layers/basemap.js';
import { ORDER } from './layers/defs.js';
import { initHeat } from './layers/heat.js';
import { initHotspots, loadHotspots } from './layers/hotspots.js';
import { loadIntegrity, makeIntegrityLayer } from './layers/integrity.js';
import { loadParty, makePartyLayer } from './layers/party.js';
import { addLayer, layers } from './layers/registry.js';
import { addWhole, loadVector, makeVectorLayer } from './layers/vector.js';
import { initPanel } from './panel.js';
import { initCoverage } from './panels/coverage.js';
import { initMapExport } from './panels/map-export.js';
import { buildFilters } from './panels/filters.js';
import { buildLayerList } from './panels/layer-list.js';
import { initLegend } from './panels/legend.js';
import { askResponsibility } from './panels/responsibility.js';
import { initSearch } from './panels/search.js';
import { initTabs, selectTab } from './panels/tabs.js';
import { progress, tracked } from './progress.js';
import { refresh, refreshNow } from './redraw.js';
import { map, setMap, visible } from './state.js';
import { activeTool } from './tools.js';
import { initDesk } from './desk/desk.js';
import { initRating } from './rating/rating.js';
import { initField } from './field/field.js';
import { initArea } from './work/area.js';
import { initRegistry } from './work/registry.js';
import { initReview } from './work/review.js';
import { initSignin } from './work/signin.js';
import { initTickets } from './work/tickets.js';
import { initOffline } from './offline/install.js';

function createMap(config) {
  setMap(L.map('map', { preferCanvas: true, zoomControl: true, maxZoom: 19, minZoom: 5 }), L.canvas({ padding: 0.3 }));
  if (config.base_tile_url) {
    L.tileLayer(config.base_tile_url, { attribution: config.base_tile_attribution, maxZoom: 19 }).addTo(map);
  }
  map.createPane('complaints').style.zIndex = 450; // above the boundaries, below popups and markers
  map.getPane('complaints').style.pointerEvents = 'none';
  map.attributionControl.setPrefix('gridgov · Leaflet');
  L.control.scale({ imperial: false }).addTo(map);
}

/* Every layer in drawing order, with how each family loads; the base map only when one is configured (on
 * unless the link names the layers). */
function createLayers(basemap) {
  for (const name of ORDER) {
    if (name === 'basemap') {
      if (!basemap) continue;
      const entry = makeBasemapLayer(basemap);
      if (!new URLSearchParams(location.hash.slice(1)).has('l')) visible.add('basemap');
      addLayer(entry, { load: () => loadBasemap(entry), settled: () => basemapDrawn(entry) });
    } else if (name === 'building') {
      const entry = makeBuildingLayer();
      addLayer(entry, { load: () => loadBuildings(entry), settled: () => buildingTilesDrawn(entry) });
    } else if (name === 'party') {
      const entry = makePartyLayer();
      addLayer(entry, { load: () => loadParty(entry) });
    } else if (name === 'complaint') {
      const entry = makeComplaintLayer();
      addLayer(entry, { load: () => loadComplaints(entry), notice: () => complaintNotice(entry) });
    } else if (name === 'integrity') {
      const entry = makeIntegrityLayer();
      addLayer(entry, { load: () => loadIntegrity(entry) });
    } else {
      const entry = makeVectorLayer(name);
      addLayer(entry, { load: () => loadVector(entry) });
    }
  }
}

/* A click inspects (a complaint or cluster, else who is responsible here) unless a work tool has the map. */
function wireMap() {
  map.on('moveend', refresh);
  map.on('click', (event) => {
    const tool = activeTool();
    if (tool) tool.click(event.latlng);
    else if (!clickComplaints(layers.complaint, event.containerPoint)) askResponsibility(event.latlng);
  });
  map.on('mousemove', (event) => {
    const over = !activeTool() && overComplaint(layers.complaint, event.containerPoint);
    map.getContainer().classList.toggle('over-complaint', over);
  });
}

async function start() {
  const started = performance.now();
  const hash = readHash();
  // the streets are fetched while the configuration is, when the view has to be fitted to them
  const streetsPromise = hash.view ? null : tracked(api('/layers/street.geojson'));
  const basemapPromise = fetchBasemap();
  const config = await api('/map/config.json');
  setRoutes(config.routes);
  createMap(config);
  createLayers(await basemapPromise);
  buildLayerList();
  initLegend();
  initCoverage({ on: hash.planner });
  initHeat();
  initHotspots({ level: hash.hotLevel });
  initHash();
  if (hash.tab) selectTab(hash.tab);

  if (hash.view) {
    map.setView([hash.view.lat, hash.view.lon], hash.view.zoom);
  } else {
    addWhole(layers.street, await streetsPromise);
    const bounds = layers.street.group.getBounds();
    if (bounds.isValid()) map.fitBounds(bounds); else map.setView([36.2, 117.1], 12);
  }
  wireMap();
  await refreshNow();
  progress.firstViewMs = performance.now() - started;
  progress.readyAt = performance.now(); // since navigation start: the first view is usable
  progress.ready = true;
  document.body.dataset.ready = '1';

  buildFilters().catch((error) => status(error.message));
  initTickets();
  initReview();
  initArea();
  initDesk();
  initRating();
  initRegistry();
  initOffline(); // before sign-in: it keeps a session's tickets for offline use
  initSignin();
  initPanel();
  initField();
  initSearch();
  initMapExport();
  initTabs();
  if (hash.planner) loadHotspots();
}

installFacade();
start().catch((error) => { status(`地图启动失败：${error.message}`); console.error(error); });
