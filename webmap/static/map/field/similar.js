/* Likely duplicates while a report is being filled in (相似工单): as the reporter types, picks a category or sets
 * the place, GET /complaints/similar lists the open and recently closed tickets nearby that look like the same
 * problem, each with its score (相似度 xx%), category, address, state and report time (北京时间). An open one
 * can be joined (加入此工单): the report is then sent with join_ticket_id, stored once and joined to that ticket,
 * whose history shows 居民附议/重复反映. Closed ones are shown without the button (a problem that came back is a
 * new report). Nothing shows when the route is not offered to this person. */
import { api, has } from '../api.js';
import { el } from '../dom.js';
import { beijingLabelled } from '../desk/format.js';
import { categoryName, STATE_NAMES } from '../names.js';

const WAIT_MS = 400; // after the last keystroke
let timer = null;
let asked = 0; // the newest question's number: older answers arriving late are dropped

/* The box the report form shows the suggestions in. */
export function similarBox() {
  return el('section', { id: 'field-similar', class: 'similar', hidden: 'hidden', 'aria-live': 'polite' });
}

function item(s, join) {
  const state = STATE_NAMES[s.state] || (s.open ? '办理中' : '已办结');
  return el('li', { class: 'similar-item', 'data-ticket': s.ticket_id, 'data-score': s.score },
    el('div', { class: 'similar-head' },
      el('strong', { class: 'similar-score' }, `相似度 ${s.score_percent}%`), ' ',
      el('span', {}, s.category_name || categoryName(s.category_code)), ' ',
      el('span', { class: 'muted' }, `工单 #${s.ticket_id} · ${state}`)),
    el('div', { class: 'muted similar-where' }, `${s.address || '位置已隐去'} · 上报 ${beijingLabelled(s.reported_at)}`),
    s.description ? el('div', { class: 'similar-text' }, s.description) : null,
    s.joinable
      ? el('button', { type: 'button', class: 'similar-join', 'data-join': s.ticket_id,
        onclick: () => join(s.ticket_id) }, '加入此工单')
      : el('p', { class: 'hint' }, '该工单已办结；如问题仍在，请照常上报'));
}

function render(box, answer, join) {
  const list = answer.similar || [];
  box.hidden = list.length === 0;
  box.dataset.count = String(list.length);
  if (!list.length) { box.replaceChildren(); return; }
  box.replaceChildren(
    el('h4', {}, `附近可能是同一问题的工单（${list.length}）`),
    el('p', { class: 'hint' }, '如是同一问题，可直接加入该工单，不必重复上报'),
    el('ol', { class: 'similar-list' }, ...list.map((s) => item(s, join))));
}

/* Ask again for the form's current values {lon, lat, text, category} (after a pause while typing); `join(id)`
 * is called when the reporter chooses a ticket to join. */
export function askSimilar(box, values, join, { now = false } = {}) {
  if (!box || !has('GET', '/complaints/similar')) return;
  clearTimeout(timer);
  if (values.lon == null || values.lat == null) { render(box, {}, join); return; }
  const run = async () => {
    const number = ++asked;
    const query = new URLSearchParams({ lon: values.lon.toFixed(7), lat: values.lat.toFixed(7) });
    if (values.text) query.set('text', values.text.slice(0, 4000));
    if (values.category) query.set('category', values.category);
    try {
      const answer = await api(`/complaints/similar?${query}`);
      if (number === asked && box.isConnected) render(box, answer, join);
    } catch (error) {
      if (number === asked) render(box, {}, join); // the report can still be sent as it is
    }
  };
  if (now) run(); else timer = setTimeout(run, WAIT_MS);
}
