/* Tickets from the map: a signed-in person's open tickets, a complaint or ticket opened in the panel, and a
 * ticket moved on with a note and a photo. */
import { api, has, session } from '../api.js';
import { emit, on } from '../bus.js';
import { $, el, status } from '../dom.js';
import { ACTION_NAMES, actionName, categoryName, STATE_NAMES } from '../names.js';
import { submit } from '../offline/outbox.js';
import { showPanel } from '../panel.js';
import { map } from '../state.js';
import { BEIJING, beijingLabelled, beijingMinute, holderText } from '../desk/format.js';
import { sentText, ticketActions } from '../field/actions.js';
import { renderSplit } from '../field/list.js';
import { gallery, photoFiles } from '../field/photo.js';
import { callbackSection } from './callback.js';
import { assigneeBody, assigneeField, pickParty } from './dispatch.js';
import { suggestionSection } from './suggestion.js';

let workflow = null; // the closed loop's actions: [{action, from, roles, title_zh}], fetched once

/* Ticket lists come as arrays, pages ({items}) or GeoJSON; a ticket as a plain object or a feature. */
export const ticketsOf = (answer) => (Array.isArray(answer) ? answer : answer.items || answer.tickets || answer.features || []);
export const ticketProps = (ticket) => (ticket.properties ? Object.assign({ id: ticket.id }, ticket.properties) : ticket);

/* A ticket's line: number, category, state, overdue and supervision marks, then its address, due time (Beijing
 * time) and current holder. */
export function ticketLine(ticket, onClick) {
  const t = ticketProps(ticket);
  return el('li', { class: t.overdue ? 'overdue' : '', 'data-ticket': t.id, 'data-supervised': t.supervision_count || 0, onclick: onClick },
    `#${t.id} `, el('strong', {}, t.category_zh || t.category || t.category_code || ''),
    ` ${STATE_NAMES[t.state] || t.state}`, t.overdue ? el('span', { class: 'badge red' }, '超期') : null,
    t.supervision_count ? el('span', { class: 'badge supervision', title: `最近督办 ${beijingLabelled(t.supervised_at)}` },
      `督办 ${t.supervision_count}`) : null,
    el('div', { class: 'muted line-detail' }, [t.address, t.due_at ? `期限 ${beijingMinute(t.due_at)}（${BEIJING}）` : null,
      t.assignee_kind !== undefined ? `承办 ${t.holder_zh || holderText(t)}` : null].filter(Boolean).join(' · ')));
}

export async function loadMyTickets() {
  const list = $('#my-tickets');
  try {
    // a grid worker's own tickets are the open ones of its grids; other roles see what is assigned to them
    const query = session.role === 'grid_worker' ? 'state=open&sort=due&limit=200' : 'state=open&mine=true&sort=due&limit=200';
    const tickets = ticketsOf(await api(`/tickets?${query}`));
    const line = (t) => ticketLine(t, () => openTicket(ticketProps(t).id));
    if (session.role === 'grid_worker') { await renderSplit(list, tickets.map(ticketProps), line); return; }
    list.replaceChildren(...(tickets.length ? tickets.map((t) => ticketLine(t, () => openTicket(ticketProps(t).id)))
      : [el('li', { class: 'muted' }, '没有工单')]));
  } catch (error) {
    list.replaceChildren(el('li', { class: 'muted' }, error.message));
  }
}

/* A complaint's own card; signed-in staff get its ticket instead. */
async function openComplaint(p) {
  if (session.token && p.ticket_id && has('GET', '/tickets/{ticket_id}')) { openTicket(p.ticket_id); return; }
  showPanel(el('h3', {}, `投诉 #${p.id}`), el('dl', {},
    el('dt', {}, '类别'), el('dd', {}, categoryName(p.category)),
    el('dt', {}, '状态'), el('dd', {}, STATE_NAMES[p.state] || '—', p.overdue ? el('span', { class: 'badge red' }, '超期') : null),
    el('dt', {}, '上报时间'), el('dd', {}, beijingLabelled(p.reported_at))),
  session.token ? null : el('p', { class: 'hint' }, '登录后可查看和处理工单。'));
}

/* The ticket of a complaint found by number: the complaint points around it carry their ticket ids. */
async function openTicketOfComplaint({ id, lon, lat }) {
  try {
    const d = 0.001;
    const around = await api(`/map/complaints.geojson?bbox=${(lon - d).toFixed(6)},${(lat - d).toFixed(6)},${(lon + d).toFixed(6)},${(lat + d).toFixed(6)}&limit=50000`);
    const found = around.features.map((f) => f.properties).find((p) => p.id === id);
    if (found && found.ticket_id) openTicket(found.ticket_id);
    else if (found) openComplaint(found);
  } catch (error) { status(error.message); }
}

/* Where a ticket is, whichever form the answer took. */
function placeOf(ticket, t) {
  const coordinates = t.location && t.location.coordinates ? t.location.coordinates : null;
  const lon = t.lon ?? (coordinates ? coordinates[0] : null) ?? (ticket.geometry ? ticket.geometry.coordinates[0] : null);
  const lat = t.lat ?? (coordinates ? coordinates[1] : null) ?? (ticket.geometry ? ticket.geometry.coordinates[1] : null);
  return lon !== null && lat !== null && lon !== undefined ? [lat, lon] : null;
}

/* The form that moves the ticket on: an action open to the role in this state, a note, a photo. */
function transitionForm(t, actions) {
  const form = el('form', { id: 'transition-form' },
    el('label', {}, '操作', el('select', { id: 'transition-action' }, ...actions.map((a) => el('option', { value: a.action },
      a.title_zh || ACTION_NAMES[a.action] || a.action)))),
    assigneeField(t, actions),
    el('label', {}, '说明', el('textarea', { id: 'transition-note', placeholder: '处置情况说明' })),
    el('label', {}, '照片', el('input', { id: 'transition-photo', type: 'file', accept: 'image/*', capture: 'environment' })),
    el('button', { type: 'submit', id: 'transition-submit' }, '提交'),
    el('p', { id: 'transition-result', class: 'hint' }));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const result = $('#transition-result');
    try {
      const note = $('#transition-note').value;
      const moved = await submit({ kind: 'transition', method: 'POST', path: `/tickets/${t.id}/transitions`,
        body: { action: $('#transition-action').value, note, version: t.version, ...assigneeBody() }, ticketId: t.id, version: t.version,
        label: `工单 #${t.id} ${$('#transition-action').selectedOptions[0].textContent}` });
      const files = (await photoFiles($('#transition-photo'), 'file')).slice(0, 1);
      if (files.length) {
        await submit({ kind: 'photo', method: 'POST', path: `/tickets/${t.id}/photos`, body: { note }, files,
          ticketId: t.id, label: `工单 #${t.id} 照片` });
      }
      result.textContent = sentText(moved, '已提交');
      emit('ticket:changed', { ids: [t.id] });
      loadMyTickets();
      openTicket(t.id);
    } catch (error) {
      result.textContent = `提交失败：${error.message}`;
    }
  });
  return form;
}

/* The latest reminder or escalation in the ticket's history, shown to its holder. */
const lastSupervision = (t) => (t.history || []).filter((e) => e.action === 'supervise' || e.action === 'escalate').pop();

function historyOf(t) {
  const titles = Object.fromEntries((workflow || []).map((a) => [a.action, a.title_zh]));
  return (t.history || []).map((e) => el('li',
    { class: ['supervise', 'escalate', 'escalation_answer'].includes(e.action) ? 'supervision-event' : '' },
    `${beijingMinute(e.at)} ${actionName(e.action, titles)}` +
    `${e.to_state && e.to_state !== e.from_state ? ` → ${STATE_NAMES[e.to_state] || e.to_state}` : ''} ${e.note || ''}`));
}

export async function openTicket(id) {
  let ticket;
  try { ticket = await api(`/tickets/${id}`); } catch (error) { showPanel(el('p', {}, error.message)); return; }
  const t = ticketProps(ticket);
  if (!workflow && has('GET', '/tickets/workflow')) workflow = await api('/tickets/workflow');
  const place = placeOf(ticket, t);
  if (place) map.setView(place, Math.max(map.getZoom(), 17), { animate: false });
  const actions = (workflow || []).filter((a) => a.from.includes(t.state) && a.roles.includes(session.role));
  const history = historyOf(t);
  showPanel(el('div', { id: 'ticket', 'data-ticket': t.id, 'data-state': t.state },
    el('h3', {}, `工单 #${t.id}`),
    el('dl', {},
      el('dt', {}, '类别'), el('dd', {}, t.category_zh || t.category || categoryName(t.category_code)),
      el('dt', {}, '状态'), el('dd', { id: 'ticket-state' }, STATE_NAMES[t.state] || t.state, t.overdue ? el('span', { class: 'badge red' }, '超期') : null),
      el('dt', {}, '描述'), el('dd', { id: 'ticket-description' }, t.description || ''),
      el('dt', {}, '地址'), el('dd', {}, t.address || ''),
      el('dt', {}, '期限'), el('dd', {}, beijingLabelled(t.due_at)),
      t.assignee_kind !== undefined ? [el('dt', {}, '承办'), el('dd', { id: 'ticket-holder' }, t.holder_zh || holderText(t))] : null,
      t.supervision_count ? [el('dt', {}, '督办'), el('dd', { id: 'ticket-supervision', class: 'supervised' },
        `已督办 ${t.supervision_count} 次，最近 ${beijingLabelled(t.supervised_at)}`,
        lastSupervision(t) ? el('div', { class: 'supervision-note' }, `${ACTION_NAMES[lastSupervision(t).action]}：${lastSupervision(t).note || ''}`) : null)] : null,
      el('dt', {}, '照片'), el('dd', { id: 'ticket-photos' }, `${(t.photos || []).length} 张`)),
    t.photos ? gallery(t) : null,
    suggestionSection(t.complaint_id, t.description, { markIn: '#ticket-description',
      pickParty: actions.some((a) => a.action === 'dispatch') ? (party) => pickParty(party, t) : null }),
    actions.length ? transitionForm(t, actions) : el('p', { class: 'hint' }, '当前状态下没有可执行的操作。'),
    ticketActions(t, openTicket),
    callbackSection(t, openTicket),
    history.length ? el('div', {}, el('h4', {}, `处理记录（${BEIJING}）`), el('ol', { class: 'history' }, ...history)) : null));
  emit('ticket:open', { id: t.id, place });
}

export function initTickets() {
  on('complaint:open', openComplaint);
  on('complaint:find', openTicketOfComplaint);
  on('session:start', () => { if (!$('#my-tickets-box').hidden) loadMyTickets(); });
  $('#my-tickets-refresh').addEventListener('click', loadMyTickets);
}
