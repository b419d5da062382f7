/* The review queue: complaints the geocoder could not place with confidence, placed by a person clicking the
 * map where each belongs. */
import { api } from '../api.js';
import { emit, on } from '../bus.js';
import { $, el } from '../dom.js';
import { categoryName } from '../names.js';
import { map } from '../state.js';
import { dropTool, useTool } from '../tools.js';
import { suggestionSection } from './suggestion.js';

async function loadReviewQueue() {
  const list = $('#review-queue');
  try {
    const items = await api('/complaints/review?limit=200');
    list.replaceChildren(...(items.length ? items.map((item) => el('li', { 'data-complaint': item.id, onclick: () => startPlacing(item) },
      `#${item.id} `, el('strong', {}, categoryName(item.category_code)), ' ', item.address || item.description || '',
      item.review_reason ? el('div', { class: 'muted' }, item.review_reason) : null))
      : [el('li', { class: 'muted' }, '没有待审核的投诉')]));
  } catch (error) {
    list.replaceChildren(el('li', { class: 'muted' }, error.message));
  }
}

/* The next click on the map places this complaint; its dispatch suggestion shows under it in the queue. */
function startPlacing(item) {
  const line = $(`#review-queue li[data-complaint="${item.id}"]`);
  if (line && !line.querySelector('.suggestion-holder')) line.append(suggestionSection(item.id, item.description));
  useTool({ name: 'place', click: (latlng) => place(item, latlng) });
  $('#review-hint').textContent = `在地图上点击投诉 #${item.id} 的位置（${item.address || item.description || ''}）。`;
  if (item.lon !== null && item.lon !== undefined && item.lat !== null) {
    map.setView([item.lat, item.lon], Math.max(map.getZoom(), 17));
  }
}

async function place(item, latlng) {
  const hint = $('#review-hint');
  try {
    const answer = await api(`/complaints/${item.id}/placement`, { method: 'POST',
      body: { lon: Number(latlng.lng.toFixed(6)), lat: Number(latlng.lat.toFixed(6)) } });
    hint.textContent = `投诉 #${item.id} 已定位到微网格 ${answer.micro_grid_code}。`;
    hint.dataset.placed = item.id;
    dropTool();
    emit('ticket:changed', { complaints: [item.id] });
    loadReviewQueue();
  } catch (error) {
    hint.textContent = `定位失败：${error.message}`;
  }
}

export function initReview() {
  on('session:start', () => { if (!$('#review-box').hidden) loadReviewQueue(); });
  $('#review-refresh').addEventListener('click', loadReviewQueue);
}
