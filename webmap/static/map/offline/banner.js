/* The offline banner at the top of the map: without a network it says so and what is waiting ("离线：3 项待发送");
 * online it shows what is being sent, conflicts to decide and refused requests (with the server's reason and a
 * way to drop them), and hides when nothing waits. It reads only the outbox's `outbox:change` counts. */
import { on } from '../bus.js';
import { el } from '../dom.js';
import { showNextConflict } from './conflict.js';
import { discard, records } from './outbox.js';

let banner = null;

function line({ waiting, conflicts, refused, offline }) {
  const parts = [];
  if (offline) parts.push(waiting ? `离线：${waiting} 项待发送` : '离线：操作将保存在本机，联网后自动发送');
  else if (waiting) parts.push(`正在发送：${waiting} 项`);
  if (conflicts) parts.push(`${conflicts} 项冲突待处理`);
  if (refused) parts.push(`${refused} 项被退回`);
  return parts.join('；');
}

async function showRefused() {
  const list = (await records()).filter((record) => record.state === 'refused');
  const box = el('ul', { id: 'outbox-refused', class: 'list' }, ...list.map((record) => el('li', {},
    record.label || `${record.kind} #${record.ticketId || ''}`,
    el('div', { class: 'muted' }, `服务器未接受：${record.reason || ''}`),
    el('button', { type: 'button', onclick: () => discard(record.seq) }, '删除此项'))));
  const old = document.getElementById('outbox-refused');
  if (old) old.remove();
  banner.append(box);
}

function render(counts) {
  const text = line(counts);
  banner.hidden = !text;
  banner.classList.toggle('offline', !!counts.offline);
  banner.dataset.waiting = counts.waiting;
  banner.replaceChildren(...[el('span', { id: 'offline-banner-text' }, text),
    counts.conflicts ? el('button', { type: 'button', onclick: showNextConflict }, '处理冲突') : null,
    counts.refused ? el('button', { type: 'button', onclick: showRefused }, '查看') : null].filter(Boolean));
}

/* Puts the banner on the page; it follows every change of the outbox. */
export function initBanner() {
  banner = el('div', { id: 'offline-banner', role: 'status', 'aria-live': 'polite', hidden: true });
  document.body.prepend(banner);
  on('outbox:change', render);
}
