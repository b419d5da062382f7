/* The sidebar's tabs: layers, filters, work, planner. */
import { emit } from '../bus.js';

export function selectTab(name) {
  document.querySelectorAll('.tabs button').forEach((b) => b.classList.toggle('active', b.dataset.tab === name));
  document.querySelectorAll('.pane').forEach((p) => p.classList.toggle('active', p.dataset.pane === name));
  emit('tab:change', { tab: name });
}

export function initTabs() {
  document.querySelectorAll('.tabs button').forEach((b) => b.addEventListener('click', () => selectTab(b.dataset.tab)));
}
