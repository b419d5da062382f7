/* The desk's wide sheet over the map, beside the sidebar: one view at a time (the rates, the overdue list),
 * opened from the work tab's street desk and closed with its × button. */
import { emit } from '../bus.js';
import { $ } from '../dom.js';
import { map } from '../state.js';

const TITLES = { rates: '考核率（响应率、办结率、解决率、按时办结率、满意率）', overdue: '超期工单督办',
  proactive: '未诉先办：每月一题与主动治理任务' };

export function openSheet(view) {
  $('#desk-sheet').hidden = false;
  $('#desk-sheet').dataset.view = view;
  $('#desk-title').textContent = TITLES[view] || '';
  document.querySelectorAll('#desk-sheet [data-desk-view]').forEach((node) => { node.hidden = node.dataset.deskView !== view; });
  emit('desk:open', { view });
}

export function closeSheet() {
  $('#desk-sheet').hidden = true;
  delete $('#desk-sheet').dataset.view;
  if (map) map.invalidateSize();
}

export function initSheet() {
  $('#desk-close').addEventListener('click', closeSheet);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !$('#desk-sheet').hidden) closeSheet();
  });
}
