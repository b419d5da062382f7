/* Safe bulk assignment (work/area.js selects the tickets): who may receive them, a named person where the
 * organisation has people, and a confirmation that names the count and the target before anything is sent.
 * Each confirmation carries its own idempotency key, so a repeated submit changes nothing; the choice of
 * target survives the list's refresh, and when it no longer fits the tickets the page says so. */
import { api } from '../api.js';
import { emit } from '../bus.js';
import { $, el, status } from '../dom.js';
import { layers } from '../layers/registry.js';
import { STANDING } from '../names.js';
import { BEIJING, beijingMinute, rememberCompanies } from './format.js';

export const DEPARTMENTS = ['综合行政执法中队', '城市管理办公室', '平安建设办公室'];

let selection = null; // {tickets, body, label} from the area
let confirmation = null; // {key, request, count, target, sent}

const distinct = (tickets, key) => [...new Set(tickets.map((t) => t[key]).filter(Boolean))];

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

/* The area's tickets and selection changed (or were cleared): a confirmation not yet sent no longer holds. */
export function setSelection(tickets, body, label) {
  selection = tickets ? { tickets, body, label } : null;
  if (confirmation && !confirmation.sent) closeConfirmation();
  if (!tickets) closeConfirmation();
}

function closeConfirmation() {
  confirmation = null;
  $('#assign-confirm-box').hidden = true;
}

/* Who may receive the tickets: the street's departments, the communities and the property companies the
 * tickets lie in (the tickets service checks each choice against every ticket). The choice is kept. */
export async function loadAssignees(tickets) {
  const before = $('#assignee').value;
  const options = [];
  for (const street of distinct(tickets, 'street_code')) {
    for (const department of DEPARTMENTS) options.push({ kind: 'street_department', code: street, department, name: `街道 · ${department}` });
  }
  const communityNames = {};
  layers.community.group.eachLayer((layer) => { communityNames[layer.feature.properties.code] = layer.feature.properties.name; });
  for (const code of distinct(tickets, 'community_code')) options.push({ kind: 'community', code, name: `社区 · ${communityNames[code] || code}` });
  const companyIds = distinct(tickets.map((t) => ({ id: t.property_company_id === null || t.property_company_id === undefined ? null : String(t.property_company_id) })), 'id');
  if (companyIds.length) {
    try {
      const companies = await api(`/map/property-companies.json?ids=${companyIds.slice(0, 500).join(',')}`);
      rememberCompanies(companies);
      for (const company of companies) {
        const standing = STANDING[company.standing] ? STANDING[company.standing][0] : company.standing;
        options.push({ kind: 'property_company', code: String(company.id), name: `物业 · ${company.name}（${standing}）` });
      }
    } catch (error) { status(error.message); }
  }
  const values = options.map((o) => JSON.stringify({ kind: o.kind, code: o.code, department: o.department }));
  $('#assignee').replaceChildren(el('option', { value: '' }, '请选择承办单位'),
    ...options.map((o, i) => el('option', { value: values[i] }, o.name)));
  const kept = before && values.includes(before);
  $('#assignee').value = kept ? before : '';
  $('#assignee-note').textContent = before && !kept && tickets.length ? '原选的承办单位不适用于当前工单，请重新选择。' : '';
  if (!kept) loadPeople();
}

/* The people of the chosen organisation, to name one (optional). */
async function loadPeople() {
  const select = $('#assignee-person');
  const before = select.value;
  select.replaceChildren(el('option', { value: '' }, '不指定人员'));
  const value = $('#assignee').value;
  if (!value) { select.disabled = true; return; }
  const assignee = JSON.parse(value);
  try {
    const people = await api(`/tickets/assignees?kind=${encodeURIComponent(assignee.kind)}&code=${encodeURIComponent(assignee.code)}`);
    select.append(...people.map((p) => el('option', { value: p.username }, p.display_name ? `${p.display_name}（${p.username}）` : p.username)));
    select.disabled = people.length === 0;
    if (people.some((p) => p.username === before)) select.value = before;
  } catch (error) {
    select.disabled = true;
  }
}

function targetName() {
  const option = $('#assignee').selectedOptions[0];
  const person = $('#assignee-person').value ? $('#assignee-person').selectedOptions[0].textContent : '';
  return option ? `${option.textContent}${person ? `（指定 ${person}）` : ''}` : '';
}

function request() {
  const assignee = JSON.parse($('#assignee').value);
  if ($('#assignee-person').value) assignee.user = $('#assignee-person').value;
  return Object.assign({}, selection.body, {
    ticket_ids: selection.tickets.map((t) => t.id),
    versions: Object.fromEntries(selection.tickets.map((t) => [t.id, t.version])),
    assignee, note: `地图区域批量派单：${selection.label}`,
  });
}

/* 批量派单: asks the server what would be assigned (a dry run), then names the count and the target. */
export async function askConfirmation() {
  if (!selection || !selection.tickets.length) return;
  if (!$('#assignee').value) { $('#assign-result').textContent = '请选择派给谁。'; return; }
  const body = request();
  try {
    const answer = await api('/tickets/assign', { method: 'POST', body: Object.assign({}, body, { dry_run: true }) });
    const count = answer.would_assign ?? answer.tickets.length;
    confirmation = { key: newKey(), request: body, count, target: targetName(), sent: false };
    $('#assign-confirm-text').textContent = `将把 ${selection.label}内 ${count} 件工单派给 ${confirmation.target}。`
      + (answer.skipped && answer.skipped.length ? `另有 ${answer.skipped.length} 件已不可派单，不在其中。` : '') + '确认派单吗？';
    $('#assign-confirm-box').dataset.count = count;
    $('#assign-confirm-box').hidden = false;
    $('#assign-confirm').disabled = false;
    $('#assign-result').textContent = '';
    delete $('#assign-result').dataset.assigned;
  } catch (error) {
    $('#assign-result').textContent = error.status === 409 ? '工单已被他人修改，请刷新后重试。' : `无法派单：${error.message}`;
  }
}

async function confirmAssignment() {
  if (!confirmation) return;
  const sending = confirmation;
  $('#assign-confirm').disabled = true;
  try {
    const answer = await api('/tickets/assign', { method: 'POST', body: sending.request,
      headers: { 'Idempotency-Key': sending.key } });
    const result = $('#assign-result');
    if (answer.replayed) {
      result.textContent = `这次确认已提交过（首次已派 ${answer.assigned} 件），未重复派单。`;
      result.dataset.assigned = '0';
    } else {
      result.textContent = `已于 ${beijingMinute(new Date().toISOString())}（${BEIJING}）派单 ${answer.assigned} 件给 ${sending.target}。`;
      result.dataset.assigned = answer.assigned;
    }
    result.dataset.replayed = answer.replayed ? '1' : '0';
    sending.sent = true;
    $('#assign-confirm-text').textContent = `已提交：${sending.count} 件派给 ${sending.target}。再次点击不会重复派单。`;
    emit('ticket:changed', { ids: sending.request.ticket_ids });
    emit('area:assigned', { ids: sending.request.ticket_ids });
  } catch (error) {
    $('#assign-result').textContent = error.status === 409 ? '工单已被他人修改，请刷新后重试。' : `派单失败：${error.message}`;
  } finally {
    $('#assign-confirm').disabled = false;
  }
}

export function initAssign() {
  $('#assignee').addEventListener('change', () => { $('#assignee-note').textContent = ''; loadPeople(); closeConfirmation(); });
  $('#assignee-person').addEventListener('change', closeConfirmation);
  $('#assign-confirm').addEventListener('click', confirmAssignment);
  $('#assign-cancel').addEventListener('click', closeConfirmation);
}
