/* How far the page is: fetches in flight, redraws under way, and when the first view was usable. The browser
 * tests and the benchmark wait on these through the façade (facade.js). */

export const progress = {
  loading: 0, // tracked fetches in flight
  pending: 0, // redraws under way
  ready: false, // the first view is drawn
  readyAt: null, // ms since navigation start when it was
  firstViewMs: null, // ms from the script's start to the first view
  lastDraw: 0,
  drawCount: 0,
  timings: {}, // ms per layer in the last redraw
};

/* Counts a fetch the map waits for while it is in flight. */
export async function tracked(promise) {
  progress.loading += 1;
  try { return await promise; } finally { progress.loading -= 1; }
}

const drawWaiters = [];

/* Resolves when the redraw after the next move has finished (all fetches and clustering done). */
export const nextDraw = () => new Promise((resolve) => { drawWaiters.push(resolve); });

export function drawFinished() {
  drawWaiters.splice(0).forEach((resolve) => resolve(progress.lastDraw));
}
