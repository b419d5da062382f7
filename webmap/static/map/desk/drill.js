/* The tickets behind one figure (GET /tickets/rates/tickets): the figure's denominator listed page by page,
 * each ticket marked when it counts in the numerator, in the side panel; a ticket opens by clicking. */
import { api } from '../api.js';
import { on } from '../bus.js';
import { el } from '../dom.js';
import { STATE_NAMES } from '../names.js';
import { showPanel } from '../panel.js';
import { openTicket } from '../work/tickets.js';
import { BEIJING, beijingMinute, percent } from './format.js';

const PAGE = 1000;
const MAX_PAGES = 20;

async function allTickets(params) {
  const items = [];
  let first = null;
  let offset = 0;
  for (let page = 0; page < MAX_PAGES && offset !== null; page += 1) {
    params.set('offset', String(offset));
    const answer = await api(`/tickets/rates/tickets?${params}`);
    first = first || answer;
    items.push(...answer.items);
    offset = answer.next_offset;
  }
  return { answer: first, items, complete: offset === null };
}

function line(item, rate) {
  return el('li', { 'data-ticket': item.id, class: item.in_numerator ? 'in-numerator' : '', onclick: () => openTicket(item.id) },
    el('span', { class: item.in_numerator ? 'mark yes' : 'mark no' }, item.in_numerator ? '✓' : '✗'),
    `#${item.id} `, el('strong', {}, item.category_zh || item.category_code), ` ${STATE_NAMES[item.state] || item.state}`,
    el('div', { class: 'muted' }, `${item.address || ''} · 上报 ${beijingMinute(item.reported_at)} · 期限 ${beijingMinute(item.due_at)}`
      + (rate === 'satisfaction' && item.rating ? ` · 评价 ${item.rating} 分` : '')),
    why(item, rate));
}

/* Why a closing is handled but not resolved: the repeat complaints that followed it, a callback saying not solved. */
function why(item, rate) {
  if (rate !== 'resolution' && rate !== 'handled') return null;
  const repeats = item.repeat_ticket_ids || [];
  const parts = [];
  if (repeats.length) parts.push(`重复投诉：${repeats.map((id) => `#${id}`).join('、')}`);
  if (item.callback_solved === false) parts.push('回访：问题未解决');
  else if (item.callback_solved === true) parts.push('回访：问题已解决');
  return parts.length ? el('div', { class: repeats.length || item.callback_solved === false ? 'repeat-note' : 'muted',
    'data-repeats': repeats.join(',') }, parts.join(' · ')) : null;
}

async function drill(figure) {
  showPanel(el('h3', {}, `${figure.title} · ${figure.name}`), el('p', { class: 'hint' }, '正在查询工单……'));
  const params = new URLSearchParams({ rate: figure.rate, level: figure.level, unit: figure.unit, limit: String(PAGE) });
  if (figure.from) params.set('from', figure.from);
  if (figure.to) params.set('to', figure.to);
  try {
    const { answer, items, complete } = await allTickets(params);
    const counted = items.filter((i) => i.in_numerator).length;
    showPanel(el('div', { id: 'drill', 'data-rate': figure.rate, 'data-unit': figure.unit, 'data-name': figure.name,
      'data-numerator': answer.numerator, 'data-denominator': answer.denominator, 'data-listed': items.length },
    el('h3', {}, `${answer.rate_zh || figure.title} · ${figure.name}`),
    el('p', {}, `${answer.rate_zh || figure.title} ${percent(answer.value)} = ${answer.numerator} / ${answer.denominator}`),
    el('p', { class: 'hint' }, `期间 ${beijingMinute(answer.from)} 至 ${beijingMinute(answer.to)}（${BEIJING}，不含截止时刻）；`
      + `下列 ${items.length} 件为分母，其中 ✓ 的 ${counted} 件计入分子。`),
    complete ? null : el('p', { class: 'hint warn' }, `工单较多，只列出前 ${items.length} 件。`),
    el('ul', { class: 'list drill-list' }, ...items.map((item) => line(item, figure.rate)))));
  } catch (error) {
    showPanel(el('h3', {}, figure.title), el('p', {}, `查询失败：${error.message}`));
  }
}

export function initDrill() {
  on('desk:drill', drill);
}
