/* The layer list in the sidebar: a switch per layer, with the zoom a layer waits for. */
import { session } from '../api.js';
import { on } from '../bus.js';
import { $, el } from '../dom.js';
import { DEFS, ORDER } from '../layers/defs.js';
import { layers } from '../layers/registry.js';
import { refresh } from '../redraw.js';
import { map, visible } from '../state.js';

function updateLayerNotes() {
  const zoom = map.getZoom();
  for (const name of ORDER) {
    const note = document.querySelector(`[data-layer-note="${name}"]`);
    if (note) note.textContent = zoom < (DEFS[name].minZoom || 0) ? `≥${DEFS[name].minZoom}级` : '';
  }
}

/* A layer for one role (the integrity faults: administrators) has its switch for that role only. */
function updateRoleRows() {
  for (const name of ORDER) {
    const box = document.querySelector(`[data-layer="${name}"]`);
    if (box && DEFS[name].role) box.closest('label').style.display = session.role === DEFS[name].role ? '' : 'none';
  }
}

/* Switches a layer on as if its box had been ticked (the caller redraws). */
export function showLayer(name) {
  visible.add(name);
  document.querySelector(`[data-layer="${name}"]`).checked = true;
}

export function buildLayerList() {
  // a layer the page did not make (the base map when none is configured) has no switch
  const shown = ORDER.filter((name) => layers[name]);
  $('#layer-list').replaceChildren(...shown.map((name) => el('label', { class: 'layer-row' },
    el('input', { type: 'checkbox', 'data-layer': name, checked: visible.has(name) ? 'checked' : null,
      onchange: (event) => {
        if (event.target.checked) visible.add(name); else visible.delete(name);
        refresh();
      } }),
    el('span', { class: 'swatch', style: `border-color:${DEFS[name].colour}` }),
    DEFS[name].title,
    el('span', { class: 'zoom-note', 'data-layer-note': name }))));
  on('map:drawn', updateLayerNotes);
  updateRoleRows();
  on('session:change', updateRoleRows);
}
