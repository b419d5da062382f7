/* The worker's list: open tickets split into 待办 (an action is the worker's: one the closed loop gives the role in
 * the ticket's state, or the ticket is assigned to the worker by name) and 知悉 (the rest of the grids' open
 * tickets, for information). Each line shows address, category, due time, holder and state (work/tickets.js). */
import { api, has, session } from '../api.js';
import { el } from '../dom.js';

let workflow = null;
const CHORES = new Set(['merge', 'reopen']); // a dispatcher's tidying, not a ticket waiting for the worker

export async function loadWorkflow() {
  if (!workflow && has('GET', '/tickets/workflow')) workflow = await api('/tickets/workflow');
  return workflow || [];
}

const isMine = (t) => {
  const me = session.me && session.me.user_id;
  return me !== undefined && me !== null && (String(t.assignee_user_id) === String(me)
    || (t.assignee_kind === 'user' && String(t.assignee_code) === String(me)));
};

/* Whether a ticket waits for the signed-in person ('todo') or is for information ('info'). */
export function groupOf(t, actions = workflow || []) {
  if (isMine(t)) return 'todo';
  const theirs = actions.some((a) => !CHORES.has(a.action) && a.from.includes(t.state) && a.roles.includes(session.role));
  if (!theirs) return 'info';
  if (session.role === 'property_company') {
    return t.assignee_kind === 'property_company' && String(t.assignee_code) === String(session.me && session.me.property_company_id)
      ? 'todo' : 'info';
  }
  return 'todo';
}

/* Fills the list with the two groups, each under its heading with its count; `line(t)` makes a ticket's line. */
export async function renderSplit(list, tickets, line) {
  const actions = await loadWorkflow();
  const groups = { todo: [], info: [] };
  for (const t of tickets) groups[groupOf(t, actions)].push(t);
  const heads = { todo: '待办（需要我处理）', info: '知悉（仅供了解）' };
  const nodes = [];
  for (const name of ['todo', 'info']) {
    nodes.push(el('li', { class: 'group-head', 'data-group-head': name, 'data-count': groups[name].length },
      `${heads[name]} ${groups[name].length} 件`));
    for (const t of groups[name]) {
      const item = line(t);
      item.dataset.group = name;
      nodes.push(item);
    }
    if (!groups[name].length) nodes.push(el('li', { class: 'muted empty', 'data-group': name }, '没有工单'));
  }
  list.replaceChildren(...nodes);
  list.dataset.todo = groups.todo.length;
  list.dataset.info = groups.info.length;
}
