/* gridgov's service worker: the map opens and the worker's grids, tiles and tickets stay readable without a
 * network (issue 16). Served at /sw.js by api/routers/app_shell.py, which writes the app shell's file list with
 * a revision per file in place of Workbox's manifest placeholder, so a changed file changes this script and the shell is
 * fetched anew. Workbox comes from npm and is served by the app (webmap/static/vendor/workbox/).
 *
 *   app shell           precached: the map page, its styles, every module, the vendored libraries, icons
 *   boundary tiles      cache first, at most TILE_ENTRIES tiles for TILE_DAYS days (base-map tiles too)
 *   the API's reads     network first; without a network the last answer for the same address, else the last
 *                       answer for the same path (a layer's GeoJSON of another view): at most DATA_ENTRIES
 *                       answers for DATA_DAYS days; tickets and people in their own cache, emptied at sign-out
 *   writes              never cached: the page's outbox (static/map/offline/) queues them */
/* global workbox */
importScripts('/static/vendor/workbox/workbox-sw.js');
workbox.setConfig({ modulePathPrefix: '/static/vendor/workbox/', debug: false });

const TILE_ENTRIES = 3000;
const TILE_DAYS = 7;
const DATA_ENTRIES = 400;
const DATA_DAYS = 3;
const PERSONAL_ENTRIES = 400;
const PERSONAL_DAYS = 2;
const CACHES = { tiles: 'gridgov-tiles', data: 'gridgov-data', personal: 'gridgov-personal' };
const BOUNDARY_TILE = /^\/tiles\/(street|community|grid|micro_grid|compound|building)\/\d+\/\d+\/\d+\.mvt$/;
const BASEMAP_TILE = /^\/basemap\/\d+\/\d+\/\d+(\.\w+)?$/; // the city's own base map (versioned by ?v=)
const PERSONAL = /^\/(tickets|auth\/me|field|complaints\/review|supervision|responsibility)/;
const API_READ = /^\/(map\/|layers|tiles|tickets|auth\/me|complaints\/review|supervision|responsibility|field|basemap\.json)/;

workbox.core.skipWaiting();
workbox.core.clientsClaim();
workbox.precaching.cleanupOutdatedCaches();
workbox.precaching.precacheAndRoute(self.__WB_MANIFEST, { ignoreURLParametersMatching: [/.*/] });

const ok = new workbox.cacheableResponse.CacheableResponsePlugin({ statuses: [200] });
const bounded = (entries, days) => new workbox.expiration.ExpirationPlugin({
  maxEntries: entries, maxAgeSeconds: days * 86400, purgeOnQuotaError: true,
});

workbox.routing.registerRoute(
  ({ url, request }) => url.origin === self.location.origin && request.method === 'GET'
    && (BOUNDARY_TILE.test(url.pathname) || BASEMAP_TILE.test(url.pathname)),
  new workbox.strategies.CacheFirst({ cacheName: CACHES.tiles, plugins: [ok, bounded(TILE_ENTRIES, TILE_DAYS)] }),
);

/* Without a network: the answer for this address, else the newest for the same path. */
const samePathFallback = {
  handlerDidError: async ({ request }) => {
    const url = new URL(request.url);
    const cache = await caches.open(PERSONAL.test(url.pathname) ? CACHES.personal : CACHES.data);
    const exact = await cache.match(request, { ignoreVary: true });
    if (exact) return exact;
    const keys = (await cache.keys()).filter((key) => new URL(key.url).pathname === url.pathname);
    return keys.length ? cache.match(keys[keys.length - 1], { ignoreVary: true }) : undefined;
  },
};

for (const [pattern, cacheName, entries, days] of [[PERSONAL, CACHES.personal, PERSONAL_ENTRIES, PERSONAL_DAYS],
  [API_READ, CACHES.data, DATA_ENTRIES, DATA_DAYS]]) {
  workbox.routing.registerRoute(
    ({ url, request }) => url.origin === self.location.origin && request.method === 'GET' && pattern.test(url.pathname),
    new workbox.strategies.NetworkFirst({
      cacheName, matchOptions: { ignoreVary: true }, plugins: [ok, bounded(entries, days), samePathFallback],
    }),
  );
}

/* The page asks to forget the signed-in person's answers at sign-out, and to know the caches' sizes. */
self.addEventListener('message', (event) => {
  const message = event.data || {};
  if (message.type === 'forget-personal') {
    event.waitUntil(caches.delete(CACHES.personal).then(() => event.source && event.source.postMessage({ type: 'forgotten' })));
  }
});
