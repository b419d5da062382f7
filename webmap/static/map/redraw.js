/* Redrawing after every move: each layer fetches what the new view needs, then the page tells the rest
 * ("map:drawn") and wakes whoever waits for the draw. */
import { emit } from './bus.js';
import { status } from './dom.js';
import { layerHooks } from './layers/registry.js';
import { drawFinished, progress } from './progress.js';

/* Moves come in bursts (a drag, a wheel spin): fetch once the map has been still for a moment; each layer
 * aborts its own stale request when a newer one starts. */
let refreshTimer = null;

export function refresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { refreshTimer = null; refreshNow(); }, 25);
}

export async function refreshNow() {
  progress.pending += 1;
  try {
    progress.timings = {};
    const hooks = layerHooks();
    const results = await Promise.allSettled(hooks.map(async ({ name, load }) => {
      const started = performance.now();
      try {
        return await load();
      } finally {
        progress.timings[name] = Math.round(performance.now() - started);
      }
    }));
    await Promise.all(hooks.map(({ settled }) => (settled ? settled() : null)));
    const failed = results.filter((r) => r.status === 'rejected' && r.reason.name !== 'AbortError');
    if (failed.length) status(`部分图层加载失败：${failed[0].reason.message}`);
    else status(hooks.map(({ notice }) => (notice ? notice() : '')).find(Boolean) || '');
  } finally {
    progress.pending -= 1;
    progress.lastDraw = performance.now();
    progress.drawCount += 1;
    emit('map:drawn');
    if (!progress.pending && !refreshTimer) drawFinished();
  }
}
