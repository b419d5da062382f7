/* The callback (回访) form on a closed ticket: whether the problem is solved and the resident satisfied, a note,
 * and for dispatchers "reopen" when it is not solved (POST /tickets/{id}/callbacks). One callback per closing:
 * once this closing has one, its answer is shown instead of the form. */
import { api, has, session } from '../api.js';
import { emit } from '../bus.js';
import { $, el } from '../dom.js';
import { beijingLabelled } from '../desk/format.js';

const CALLERS = ['admin', 'street', 'community', 'grid_worker'];
const REOPENERS = ['admin', 'street', 'community'];
const SATISFIED = { true: '满意', false: '不满意' };

/* This closing has been called back already (a callback before a reopening belongs to the earlier closing). */
const calledBack = (t) => Boolean(t.callback_at && t.closed_at && new Date(t.callback_at) >= new Date(t.closed_at));

function answerText(t) {
  const solved = t.callback_solved ? '问题已解决' : '问题未解决';
  const satisfied = t.callback_satisfied === null || t.callback_satisfied === undefined ? '未表态'
    : SATISFIED[t.callback_satisfied];
  return `${beijingLabelled(t.callback_at)}：${solved}，居民${satisfied}`;
}

function radios(name, choices) {
  return el('span', { class: 'choices' }, ...choices.map(([value, label], i) => el('label', {},
    el('input', { type: 'radio', name, value, ...(i === 0 ? { checked: '' } : {}) }), label)));
}

/* The callback section of a ticket's panel, or null when there is nothing to show. onDone(id) reopens the panel. */
export function callbackSection(t, onDone) {
  if (t.state !== 'closed' && !t.callback_at) return null;
  if (calledBack(t) || t.state !== 'closed') {
    return el('div', { id: 'callback-answer', class: t.callback_solved ? 'hint' : 'hint warn' },
      el('strong', {}, '回访 '), answerText(t),
      t.callback_solved === false ? el('span', { class: 'badge red' }, '未解决，不计入解决率') : null);
  }
  if (!session.token || !CALLERS.includes(session.role) || !has('POST', '/tickets/{ticket_id}/callbacks')) return null;
  const reopen = REOPENERS.includes(session.role)
    ? el('label', { class: 'inline' }, el('input', { type: 'checkbox', id: 'callback-reopen' }), '未解决时重新打开工单')
    : null;
  const form = el('form', { id: 'callback-form' },
    el('h4', {}, '回访'),
    el('div', {}, '问题是否解决', radios('callback-solved', [['true', '已解决'], ['false', '未解决']])),
    el('div', {}, '居民是否满意', radios('callback-satisfied', [['', '未表态'], ['true', '满意'], ['false', '不满意']])),
    el('label', {}, '回访说明', el('textarea', { id: 'callback-note', placeholder: '居民的原话或回访情况' })),
    reopen,
    el('button', { type: 'submit', id: 'callback-submit' }, '登记回访'),
    el('p', { id: 'callback-result', class: 'hint' }));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const result = $('#callback-result');
    const solved = form.querySelector('input[name=callback-solved]:checked').value === 'true';
    const satisfiedValue = form.querySelector('input[name=callback-satisfied]:checked').value;
    const body = { solved, satisfied: satisfiedValue === '' ? null : satisfiedValue === 'true',
      note: $('#callback-note').value || null, version: t.version,
      reopen: Boolean(!solved && $('#callback-reopen') && $('#callback-reopen').checked) };
    try {
      const answer = await api(`/tickets/${t.id}/callbacks`, { method: 'POST', body });
      result.textContent = answer.reopened ? '已登记回访，工单已重新打开' : '已登记回访';
      emit('ticket:changed', { ids: [t.id] });
      onDone(t.id);
    } catch (error) {
      result.textContent = `登记失败：${error.message}`;
    }
  });
  return form;
}
