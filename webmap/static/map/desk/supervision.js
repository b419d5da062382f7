/* Supervision (督办) and escalation (吹哨报到) from the desk: the overdue tickets of the street, most overdue
 * first, each with its address, category, due time, holder and state; a reminder or an escalation is sent to
 * the holder with a note, and the holder sees it on the ticket (work/tickets.js). */
import { api } from '../api.js';
import { emit, on } from '../bus.js';
import { $, el } from '../dom.js';
import { categoryName } from '../names.js';
import { openTicket } from '../work/tickets.js';
import { BEIJING, beijingMinute, holderText, rememberCompanies } from './format.js';
import { loadEscalations } from './escalations.js';

export const ESCALATION_DEPARTMENTS = ['综合行政执法中队', '城市管理办公室', '平安建设办公室', '市场监管所',
  '派出所', '住房和城乡建设局', '供水公司', '供热公司'];
const LIMIT = 200;

function hoursText(hours) {
  const whole = Math.floor(hours);
  if (whole >= 48) return `超期 ${Math.floor(whole / 24)} 天 ${whole % 24} 小时`;
  return `超期 ${hours} 小时`;
}

/* The note form under a line, for a reminder or an escalation. */
function actionForm(item, action) {
  const escalate = action === 'escalate';
  const form = el('form', { class: 'supervise-form', 'data-action': action },
    escalate ? el('label', {}, '吹哨给', el('select', { class: 'escalate-department' },
      ...ESCALATION_DEPARTMENTS.map((name) => el('option', { value: name }, name)))) : null,
    el('label', {}, escalate ? '吹哨事由（必填）' : '督办意见', el('textarea', { class: 'supervise-note',
      placeholder: escalate ? '说明需要部门到场解决的问题' : '请抓紧办理，按时限办结并反馈。' })),
    el('div', { class: 'row' },
      el('button', { type: 'submit', class: 'supervise-send' }, escalate ? '发送吹哨' : '发送督办'),
      el('button', { type: 'button', onclick: () => form.remove() }, '取消')),
    el('p', { class: 'hint supervise-result' }));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const note = form.querySelector('.supervise-note').value.trim();
    const result = form.querySelector('.supervise-result');
    const send = form.querySelector('.supervise-send');
    send.disabled = true;
    try {
      const answer = escalate
        ? await api(`/supervision/tickets/${item.id}/escalate`, { method: 'POST',
          body: { department: form.querySelector('.escalate-department').value, reason: note } })
        : await api(`/supervision/tickets/${item.id}/remind`, { method: 'POST', body: { note: note || null } });
      const line = form.closest('li');
      line.dataset.supervised = String(answer.supervision_count);
      line.querySelector('.supervision').textContent = `已督办 ${answer.supervision_count} 次`;
      line.querySelector('.supervision').hidden = false;
      form.replaceChildren(el('p', { class: 'hint done' }, escalate
        ? `已向${answer.department}吹哨，待其报到。` : '督办已发送，承办方会在工单上看到。'));
      emit('ticket:changed', { ids: [item.id] });
      if (escalate) loadEscalations();
    } catch (error) {
      result.textContent = `发送失败：${error.message}`;
      send.disabled = false;
    }
  });
  return form;
}

function openForm(line, item, action) {
  const old = line.querySelector('.supervise-form');
  if (old) old.remove();
  line.append(actionForm(item, action));
  line.querySelector('.supervise-note').focus();
}

function overdueLine(item) {
  const line = el('li', { 'data-ticket': item.id, 'data-overdue-hours': item.overdue_hours,
    'data-supervised': item.supervision_count || 0 },
  el('div', { class: 'overdue-head' },
    el('button', { type: 'button', class: 'link', onclick: () => openTicket(item.id) }, `#${item.id}`),
    el('strong', {}, item.category_zh || categoryName(item.category_code)),
    el('span', { class: 'badge red' }, hoursText(item.overdue_hours)),
    el('span', { class: 'state' }, item.state_zh || item.state),
    el('span', { class: 'badge supervision', hidden: item.supervision_count ? null : 'hidden' },
      `已督办 ${item.supervision_count} 次`)),
  el('div', { class: 'muted' }, item.address || '（无地址）'),
  el('div', { class: 'muted' }, `期限 ${beijingMinute(item.due_at)}（${BEIJING}） · 承办 ${holderText(item)}`
    + (item.open_escalations ? ` · 待报到吹哨 ${item.open_escalations} 件` : '')),
  el('div', { class: 'row' },
    el('button', { type: 'button', class: 'remind-button', onclick: () => openForm(line, item, 'supervise') }, '督办'),
    el('button', { type: 'button', class: 'escalate-button', onclick: () => openForm(line, item, 'escalate') }, '吹哨报到')));
  return line;
}

async function companies(items) {
  const ids = [...new Set(items.filter((i) => i.assignee_kind === 'property_company').map((i) => i.assignee_code))];
  if (!ids.length) return;
  try { rememberCompanies(await api(`/map/property-companies.json?ids=${ids.slice(0, 500).join(',')}`)); } catch (error) { /* names stay ids */ }
}

export async function loadOverdue() {
  const note = $('#overdue-note');
  note.textContent = '正在查询……';
  try {
    const answer = await api(`/supervision/overdue?limit=${LIMIT}`);
    await companies(answer.items);
    $('#overdue-list').replaceChildren(...(answer.items.length ? answer.items.map(overdueLine)
      : [el('li', { class: 'muted' }, '没有超期工单。')]));
    note.textContent = `超期未办结工单 ${answer.total} 件，按超期时长排列（最久在前）`
      + (answer.total > answer.items.length ? `，列出前 ${answer.items.length} 件。` : '。');
    note.dataset.total = answer.total;
  } catch (error) {
    note.textContent = `查询失败：${error.message}`;
  }
}

export function initSupervision() {
  $('#desk-overdue').replaceChildren(
    el('div', { class: 'row' }, el('button', { type: 'button', id: 'overdue-refresh' }, '刷新')),
    el('p', { id: 'overdue-note', class: 'hint' }),
    el('ul', { id: 'overdue-list', class: 'list desk-list' }),
    el('div', { id: 'escalation-box' }));
  $('#overdue-refresh').addEventListener('click', () => { loadOverdue(); loadEscalations(); });
  on('desk:open', ({ view }) => { if (view === 'overdue') { loadOverdue(); loadEscalations(); } });
}
