/* The side panel on the right of the map: who is responsible, a complaint, a ticket, a cluster's list. */
import { $ } from './dom.js';
import { map } from './state.js';

export function showPanel(...children) {
  $('#panel-body').replaceChildren(...children);
  $('#panel').hidden = false;
  map.invalidateSize();
}

export function initPanel() {
  $('#panel-close').addEventListener('click', () => { $('#panel').hidden = true; map.invalidateSize(); });
}
