/* The map's layers by name, in drawing order. Each family module makes its entries; main.js adds them here and
 * redraw.js loads them after every move.
 *
 * An entry is the layer's own state ({name, def, group, ...}); its hooks are
 *   load()     fetch what the view needs and draw it (may reject; an AbortError means a newer load started)
 *   settled()  optional: resolves when what load() started is painted (vector tiles decode after load)
 *   notice()   optional: a note for the status line while the layer shows (or '') */

export const layers = {};
const hooks = [];

export function addLayer(entry, { load, settled = null, notice = null }) {
  layers[entry.name] = entry;
  hooks.push({ name: entry.name, load, settled, notice });
}

export const layerHooks = () => hooks;
