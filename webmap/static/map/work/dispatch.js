/* The dispatch form's receiving unit (承办单位) for one ticket, shown while the chosen action is 派遣: the ticket's
 * property company, its community, its street office's departments, or a unit the dispatch model names. A party
 * the model suggested (work/suggestion.js) is picked into it with one click. */
import { $, el } from '../dom.js';
import { DEPARTMENTS } from '../desk/assign.js';

const KIND_NAMES = { property_company: '物业公司', community: '社区', street_department: '街道', utility: '专业单位' };

/* The assignee {kind, code, department} that a model's party label (property_company, community,
 * street_department:综合行政执法中队, utility:热力公司) means for ticket `t`; null when the ticket has no such unit. */
export function assigneeOfParty(party, t) {
  const at = party.indexOf(':');
  const kind = at < 0 ? party : party.slice(0, at);
  const department = at < 0 ? null : party.slice(at + 1) || null;
  if (kind === 'property_company') {
    return t.property_company_id === null || t.property_company_id === undefined ? null
      : { kind, code: String(t.property_company_id), department: null };
  }
  if (kind === 'community') return t.community_code ? { kind, code: t.community_code, department: null } : null;
  if (kind === 'street_department') return t.street_code && department ? { kind, code: t.street_code, department } : null;
  if (kind === 'utility') return department ? { kind, code: department, department } : null;
  return null;
}

const valueOf = (a) => JSON.stringify({ kind: a.kind, code: a.code, department: a.department });
const nameOf = (a) => `${KIND_NAMES[a.kind]}${a.department ? ` · ${a.department}` : ''}`;

function options(t) {
  return [assigneeOfParty('property_company', t), assigneeOfParty('community', t),
    ...DEPARTMENTS.map((department) => assigneeOfParty(`street_department:${department}`, t))].filter(Boolean);
}

function sync() {
  const field = $('#transition-assignee-field');
  const action = $('#transition-action');
  if (field && action) field.hidden = action.value !== 'dispatch';
}

document.addEventListener('change', (event) => { if (event.target.id === 'transition-action') sync(); });

/* The receiving unit's field of ticket `t`'s transition form, or null when `actions` hold no 派遣. */
export function assigneeField(t, actions) {
  if (!actions.some((a) => a.action === 'dispatch')) return null;
  return el('label', { id: 'transition-assignee-field', hidden: actions[0].action === 'dispatch' ? null : 'hidden' },
    '承办单位', el('select', { id: 'transition-assignee' }, el('option', { value: '' }, '请选择承办单位'),
      ...options(t).map((a) => el('option', { value: valueOf(a) }, nameOf(a)))));
}

/* What the transition's body adds for the chosen action: the assignee when dispatching. */
export function assigneeBody() {
  const select = $('#transition-assignee');
  if (!select || $('#transition-action').value !== 'dispatch' || !select.value) return {};
  return { assignee: JSON.parse(select.value) };
}

/* Picks a suggested party into the form: the action becomes 派遣 and the party its receiving unit (added to the
 * choices when it is a unit not listed). False when the ticket has no such unit or the form cannot dispatch. */
export function pickParty(party, t) {
  const select = $('#transition-assignee');
  const assignee = assigneeOfParty(party, t);
  if (!select || !assignee) return false;
  const value = valueOf(assignee);
  if (![...select.options].some((option) => option.value === value)) select.append(el('option', { value }, nameOf(assignee)));
  select.value = value;
  $('#transition-action').value = 'dispatch';
  sync();
  select.dispatchEvent(new Event('change', { bubbles: true }));
  return true;
}
