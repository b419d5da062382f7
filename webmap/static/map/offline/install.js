/* The field app offline: registers the service worker (/sw.js, served by the app, scope the whole site), starts
 * the outbox with its banner and conflict screen, and, when a grid worker's session starts online, reads the
 * worker's open tickets and each one's details once so the service worker keeps them for a stairwell without
 * signal. At sign-out the service worker forgets the personal answers it kept. */
import { api, session, wasWritten } from '../api.js';
import { on } from '../bus.js';
import { initBanner } from './banner.js';
import { initConflicts } from './conflict.js';
import { initOutbox } from './outbox.js';

const PREFETCH_TICKETS = 100;
const WARM_LIMIT = 400;
const OPEN_TICKETS = '/tickets?state=open&sort=due&limit=200';
const OFFLINE_READS = ['/tickets/workflow', '/map/categories.json', '/field/me']; // a ticket's actions, the report form
const API_READ = /^\/(map\/|layers|tiles|tickets|auth\/me|field)/;

export const offlineState = { registered: false, controlled: false, warmed: 0, prefetched: 0, prefetchDone: false };

/* Resolves once a service worker controls the page (at once on a visit after the first). */
function controlled() {
  if (!('serviceWorker' in navigator)) return Promise.resolve(false);
  if (navigator.serviceWorker.controller) return Promise.resolve(true);
  return new Promise((resolve) => {
    navigator.serviceWorker.addEventListener('controllerchange', () => resolve(true), { once: true });
  });
}

/* On the first visit the page fetched its start before the service worker took over: those reads are fetched
 * again through it, so the page can start offline next time. Resource timings carry no method, so the addresses
 * the page wrote to are left out (a slow service worker may take over after the first write). */
export function warmUrls() {
  const own = location.origin;
  return [...new Set(performance.getEntriesByType('resource').map((entry) => entry.name))]
    .filter((url) => url.startsWith(own) && API_READ.test(new URL(url).pathname) && !wasWritten(url))
    .slice(0, WARM_LIMIT);
}

async function warmUp() {
  const headers = session.token ? { Authorization: `Bearer ${session.token}` } : {};
  for (const url of warmUrls()) {
    try { await fetch(url, { headers }); offlineState.warmed += 1; } catch (error) { return; }
  }
}

async function register() {
  if (!('serviceWorker' in navigator)) return;
  const hadController = !!navigator.serviceWorker.controller;
  try {
    await navigator.serviceWorker.register('/sw.js', { scope: '/' });
    offlineState.registered = true;
    await controlled();
    if (!hadController) await warmUp();
    offlineState.controlled = true;
  } catch (error) {
    console.warn('service worker not registered', error);
  }
}

/* The worker's open tickets and their details, read while online so they are there offline. */
async function prefetchTickets() {
  if (!navigator.onLine || session.role !== 'grid_worker' || !(await controlled())) return;
  try {
    for (const path of OFFLINE_READS) await api(path);
    const answer = await api(OPEN_TICKETS);
    const tickets = Array.isArray(answer) ? answer : answer.items || answer.features || [];
    for (const ticket of tickets.slice(0, PREFETCH_TICKETS)) {
      await api(`/tickets/${ticket.id}`);
      offlineState.prefetched += 1;
    }
  } catch (error) {
    console.warn('tickets not kept for offline use', error);
  }
  offlineState.prefetchDone = true;
}

function forgetPersonal() {
  const worker = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (worker) worker.postMessage({ type: 'forget-personal' });
}

/* Starts everything offline: the banner, the conflict screen, the queue, the service worker. */
export function initOffline() {
  initBanner();
  initConflicts();
  initOutbox();
  on('session:start', () => { prefetchTickets(); });
  on('session:change', ({ signedIn }) => { if (!signedIn) forgetPersonal(); });
  register();
}
