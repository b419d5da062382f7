/* The conflict screen: a request made offline met a ticket someone else moved meanwhile (the server's 409). It
 * shows both sides — what the person did offline (when, on which version) and the ticket now (its state, who
 * moved it and when, in Beijing time) — and lets the person choose: discard theirs, or apply it again on the
 * new version. Nothing is overwritten without that choice. One conflict at a time; the rest wait their turn. */
import { on } from '../bus.js';
import { $, el } from '../dom.js';
import { beijingLabelled } from '../desk/format.js';
import { ACTION_NAMES, STATE_NAMES } from '../names.js';
import { applyAgain, discard, records } from './outbox.js';

const KIND_NAMES = { note: '备注', photo: '照片', transition: '办理操作', report: '上报' };
let shown = null; // the record on screen

const stateName = (state) => STATE_NAMES[state] || state || '—';

/* What the person did: the caller's label, else the action and the ticket. */
function mine(record) {
  const action = record.body && record.body.action;
  const what = record.label || `${ACTION_NAMES[action] || KIND_NAMES[record.kind] || record.kind} 工单 #${record.ticketId}`;
  return el('section', { class: 'conflict-side', id: 'conflict-mine' },
    el('h4', {}, '我离线时的操作'),
    el('p', {}, what),
    record.body && record.body.note ? el('p', { class: 'muted' }, `说明：${record.body.note}`) : null,
    el('p', { class: 'muted' }, `操作时间：${beijingLabelled(record.madeAt)}`),
    el('p', { class: 'muted' }, `基于版本：${record.version ?? '—'}`));
}

/* The ticket now: its state and the change that moved it since the person's version. */
function theirs(record) {
  const ticket = record.current || {};
  if (ticket.error) {
    return el('section', { class: 'conflict-side', id: 'conflict-theirs' }, el('h4', {}, '工单现在'),
      el('p', {}, '暂时无法读取工单的最新状态，请稍后再试。'));
  }
  const history = ticket.history || [];
  const moves = history.filter((event) => event.from_state !== event.to_state);
  const last = moves[moves.length - 1] || history[history.length - 1];
  return el('section', { class: 'conflict-side', id: 'conflict-theirs' },
    el('h4', {}, '工单现在'),
    el('p', {}, `状态：${stateName(ticket.state)}`, el('span', { class: 'muted' }, `（版本 ${ticket.version ?? '—'}）`)),
    last ? el('p', { id: 'conflict-moved' },
      `${last.actor || '其他人员'} 于 ${beijingLabelled(last.at)} ${ACTION_NAMES[last.action] || last.action}`,
      last.from_state !== last.to_state ? `：${stateName(last.from_state)} → ${stateName(last.to_state)}` : '') : null,
    last && last.note ? el('p', { class: 'muted' }, `说明：${last.note}`) : null);
}

function close() {
  shown = null;
  const screen = $('#conflict-screen');
  if (screen) screen.remove();
}

/* Shows the next conflict waiting, if any and none is on screen. */
export async function showNextConflict() {
  if (shown) return;
  const next = (await records()).find((record) => record.state === 'conflict');
  if (next) showConflict(next);
}

function showConflict(record) {
  close();
  shown = record;
  const version = record.current && record.current.version;
  const choose = (work) => async () => {
    $('#conflict-screen').querySelectorAll('button').forEach((button) => { button.disabled = true; });
    await work();
    close();
    showNextConflict();
  };
  document.body.append(el('div', { id: 'conflict-screen', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'conflict-title', 'data-seq': record.seq },
    el('div', { class: 'conflict-card' },
      el('h3', { id: 'conflict-title' }, `工单 #${record.ticketId} 已被他人更新`),
      el('p', { class: 'hint' }, '您离线时办理了这张工单，但在此期间有人变更了它。您的操作尚未生效，请选择如何处理：'),
      el('div', { class: 'conflict-sides' }, mine(record), theirs(record)),
      el('div', { class: 'conflict-actions' },
        el('button', { type: 'button', id: 'conflict-discard', onclick: choose(() => discard(record.seq)) }, '放弃我的操作'),
        el('button', { type: 'button', id: 'conflict-apply', class: 'primary', disabled: version === undefined,
          onclick: choose(() => applyAgain(record, version)) }, `在新版本（${version ?? '—'}）上重新提交`)))));
}

/* Listens for conflicts; shows one kept from before a reload. */
export function initConflicts() {
  on('outbox:conflict', ({ record }) => { if (!shown) showConflict(record); });
  on('outbox:change', ({ conflicts }) => { if (conflicts) showNextConflict(); });
}
