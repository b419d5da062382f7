/* window.gridgov: the one global the page sets, on purpose, for the browser tests (tests/test_map_browser.py,
 * tests/browser/harness.py) and the map benchmark (benchmarks/bench_map.py). Nothing in the page reads it; the
 * modules talk through bus.js. Every field is a read-only view of a module's own state:
 *
 *   ready, readyAt, firstViewMs   the first view is usable (readyAt: ms since navigation start)
 *   loading, pending              tracked fetches in flight, redraws under way (0 and 0 when settled)
 *   lastDraw, drawCount, timings  the last redraw: when, how many so far, ms per layer
 *   nextDraw()                    a promise of the end of the redraw after the next move
 *   map                           the Leaflet map
 *   layers                        the layers' entries by name (layers/registry.js)
 *   drawn, areaTickets            the area drawn for bulk assignment and its tickets (work/area.js)
 *   outbox, offline               the offline queue (submit, flush, records) and the service worker's state
 *   highlighted                   the company whose compounds are outlined and their codes (rating/highlight.js)
 */
import { layers } from './layers/registry.js';
import { nextDraw, progress } from './progress.js';
import { offlineState } from './offline/install.js';
import { highlighted } from './rating/highlight.js';
import { outboxView } from './offline/outbox.js';
import { map } from './state.js';
import { areaTicketList, drawnArea } from './work/area.js';

export function installFacade() {
  const facade = { nextDraw };
  const views = {
    ready: () => progress.ready, readyAt: () => progress.readyAt, firstViewMs: () => progress.firstViewMs,
    loading: () => progress.loading, pending: () => progress.pending,
    lastDraw: () => progress.lastDraw, drawCount: () => progress.drawCount, timings: () => progress.timings,
    map: () => map, layers: () => layers, drawn: drawnArea, areaTickets: areaTicketList,
    outbox: () => outboxView, offline: () => offlineState,
    highlighted,
  };
  for (const [name, get] of Object.entries(views)) Object.defineProperty(facade, name, { get, enumerable: true });
  window.gridgov = Object.freeze(facade);
}
