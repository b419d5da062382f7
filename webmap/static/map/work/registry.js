/* Editing the registry from the map (在线维护), in the work tab, by the people responsible:
 *
 *   a street office or community opens a compound ("编辑" in the responsibility panel, event registry:edit) and
 *   gets forms for a change of management mode, a takeover (接管), the owners' committee's new term (换届), grid
 *   workers joining or leaving, and a party organisation's secretary or its dissolution (撤销);
 *   a property company sees its own basic information, proposes changes and sees whether they are pending;
 *   a street office (or the administrator) sees the pending proposals and approves or rejects them with a reason.
 *
 * Every rule is the server's: a refusal shows its Chinese reason. Dates are Beijing dates. After a change the
 * responsibility panel is asked again, so what changed is what it shows. A form shows only where this deployment
 * serves its route (/map/config.json lists them), and the edit entry only on the caller's own compounds. */
import { api, has, session } from '../api.js';
import { emit, on } from '../bus.js';
import { $, el } from '../dom.js';
import { MODE_NAMES, PARTY_KINDS } from '../names.js';
import { askResponsibility } from '../panels/responsibility.js';
import { selectTab } from '../panels/tabs.js';
import { EDIT_ROLES, mayEdit, PARTIES } from './registry-access.js';

const REVIEW_ROLES = ['admin', 'street'];
const COMPANY_FIELDS = { contact_name: '联系人', contact_phone: '联系电话', has_party_org: '有党组织',
  party_work_only: '未建党组织但开展党的工作' };
const STATE_TEXT = { pending: '待审核', approved: '已通过', rejected: '已驳回' };
let opened = null; // {code, latlng} of the compound whose forms are shown

/* The form `node` when the deployment serves `method route`, else nothing. */
const offered = (method, route, node) => (has(method, route) ? node : null);

/* Today in Beijing as YYYY-MM-DD (the form's default date). */
export const beijingToday = () => new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date());
const beijingTime = (iso) => (iso ? new Date(iso).toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false }) : '');
const yesNo = (value) => (value === true ? '是' : value === false ? '否' : (value ?? '—'));

const text = (name, label, attrs = {}) => el('label', {}, label, el('input', { name, ...attrs }));
const day = (name, label, value = beijingToday()) => text(name, label, { type: 'date', value, required: true });
const reason = () => text('reason', '原因', { required: true, maxlength: 500 });
const check = (name, label, checked = false) => el('label', { class: 'check' },
  el('input', { type: 'checkbox', name, checked: checked ? 'checked' : null }), ` ${label}`);
const choose = (name, label, options) => el('label', {}, label, el('select', { name },
  ...options.map(([value, caption]) => el('option', { value }, caption))));

/* A form that sends its values with `submit(values)`; the answer's note, or the server's reason, below it. */
function form(id, title, fields, submit, after = changed) {
  const note = el('p', { class: 'hint', 'data-result': '' });
  const node = el('form', { id, class: 'registry-form' }, el('h5', {}, title), ...fields,
    el('button', { type: 'submit' }, '提交'), note);
  node.addEventListener('submit', async (event) => {
    event.preventDefault();
    const values = {};
    for (const input of node.elements) {
      if (!input.name) continue;
      values[input.name] = input.type === 'checkbox' ? input.checked : input.value.trim();
    }
    note.classList.remove('warn');
    note.dataset.result = '';
    try {
      const message = (await submit(values)) || '已保存';
      note.textContent = message;
      note.dataset.result = 'ok';
      after(message);
    } catch (error) {
      note.textContent = `未保存：${error.message}`;
      note.dataset.result = 'refused';
      note.classList.add('warn');
    }
  });
  return node;
}

const post = (path, body) => api(path, { method: 'POST', body });
const orNull = (value) => (value === '' ? null : value);

/* After a change: the forms read again (the message kept above them) and the responsibility panel asked again. */
function changed(message) {
  emit('registry:changed', { compound: opened && opened.code });
  if (!opened) return;
  openCompound(opened, message);
  if (opened.latlng) askResponsibility(opened.latlng);
}

/* --- a compound's forms ---------------------------------------------------------------------------------- */

function managementForms(code, parties) {
  const current = parties.management || {};
  const modes = Object.entries(MODE_NAMES).filter(([mode]) => mode !== current.management_mode);
  return [
    el('p', { class: 'muted' }, `当前：${MODE_NAMES[current.management_mode] || '—'}`,
      current.company_credit_code ? ` · ${current.company_credit_code}` : '', ` · 自 ${current.valid_from || '—'}`),
    offered('POST', '/registry/compounds/{compound_code}/management', form('registry-mode', '管理方式变更', [choose('management_mode', '新的管理方式', modes), day('on_date', '变更日期'),
      reason()], (v) => post(`/registry/compounds/${code}/management`, v)
      .then((a) => `已登记：自 ${a.valid_from} 起为${MODE_NAMES[a.management_mode]}`))),
    offered('POST', '/registry/compounds/{compound_code}/takeover', form('registry-takeover', '物业接管', [text('company_credit_code', '接管企业统一社会信用代码', { required: true }),
      day('on_date', '接管日期'), reason()], (v) => post(`/registry/compounds/${code}/takeover`, v)
      .then((a) => `已登记接管：自 ${a.valid_from} 起为${MODE_NAMES[a.management_mode]}`))),
  ];
}

function termForm(code, parties) {
  const last = parties.terms[0];
  if (!has('POST', '/registry/compounds/{compound_code}/committee-terms')) return null;
  return form('registry-term', '业主委员会换届', [
    last ? el('p', { class: 'muted' }, `上一届：${last.term_start} 至 ${last.term_end || '未定'}，主任 ${last.chair_name}`) : null,
    day('term_start', '任期开始'), text('term_end', '任期结束', { type: 'date' }),
    text('member_count', '委员人数', { type: 'number', min: 0, required: true }),
    text('party_member_count', '党员委员人数', { type: 'number', min: 0, required: true }),
    text('chair_name', '主任姓名', { required: true }), check('chair_is_party_member', '主任是党员'),
    text('members', '委员名单'), reason(),
  ], (v) => post(`/registry/compounds/${code}/committee-terms`, { ...v, term_end: orNull(v.term_end),
    members: orNull(v.members) }).then((a) => `已登记新一届：${a.term_start} 至 ${a.term_end || '未定'}`));
}

function workerForms(parties) {
  const workers = parties.grid_workers.map((w) => [w.id, `${w.name}（${w.grid_code}，自 ${w.since}）`]);
  const grids = parties.grids.map((g) => [g, g]);
  return [
    el('ul', { class: 'list', id: 'registry-workers' }, ...(parties.grid_workers.length
      ? parties.grid_workers.map((w) => el('li', { 'data-worker': w.id }, `${w.name} · ${w.grid_code} · 自 ${w.since}`,
        w.is_part_time ? ' · 兼职' : ''))
      : [el('li', { class: 'muted' }, '本社区网格暂无在任网格员')])),
    offered('POST', '/registry/grid-workers/joins', form('registry-join', '网格员到任或调整网格', [
      choose('worker_id', '网格员', [['', '新网格员（填写下列信息）'], ...workers]), choose('grid_code', '到任网格', grids),
      text('name', '新网格员姓名'), text('phone', '手机号'), check('is_party_member', '党员'), check('is_part_time', '兼职'),
      text('company_credit_code', '所属物业企业信用代码（兼职必填）'), day('on_date', '到任日期'), reason(),
    ], (v) => post('/registry/grid-workers/joins', {
      grid_code: v.grid_code, on_date: v.on_date, reason: v.reason, worker_id: v.worker_id ? Number(v.worker_id) : null,
      worker: v.worker_id ? null : { name: v.name, phone: v.phone, is_party_member: v.is_party_member,
        is_part_time: v.is_part_time, company_credit_code: orNull(v.company_credit_code) },
    }).then((a) => `${a.name} 自 ${a.since} 起在网格 ${a.grid_code} 任职`))),
    workers.length && has('POST', '/registry/grid-workers/{worker_id}/leave') ? form('registry-leave', '网格员离任', [choose('worker_id', '网格员', workers),
      day('on_date', '离任日期'), reason()], (v) => post(`/registry/grid-workers/${v.worker_id}/leave`, v)
      .then((a) => `已登记离任：自 ${a.until} 起不再在网格 ${a.grid_code} 任职`)) : null,
  ];
}

function partyForms(parties) {
  if (!parties.party_organisations.length) return [el('p', { class: 'muted' }, '本小区及所在社区、网格暂无党组织')];
  const orgs = parties.party_organisations.map((p) => [p.code,
    `${PARTY_KINDS[p.kind] || p.kind} ${p.name}（书记 ${p.secretary_name || '—'}）`]);
  return [
    offered('POST', '/registry/party-organisations/{organisation_code}/secretary', form('registry-secretary', '党组织书记变更', [choose('code', '党组织', orgs), text('secretary_name', '书记姓名', { required: true }),
      text('secretary_phone', '书记电话'), reason()],
    (v) => post(`/registry/party-organisations/${v.code}/secretary`, { secretary_name: v.secretary_name,
      secretary_phone: orNull(v.secretary_phone), reason: v.reason }).then((a) => `书记已变更为 ${a.secretary_name}`))),
    offered('POST', '/registry/party-organisations/{organisation_code}/dissolve', form('registry-dissolve', '党组织撤销', [choose('code', '党组织', orgs), day('on_date', '撤销日期'), reason()],
      (v) => post(`/registry/party-organisations/${v.code}/dissolve`, { on_date: v.on_date, reason: v.reason })
        .then((a) => `已撤销：${a.valid_to} 起不再存在`))),
  ];
}

async function openCompound(detail, message = null) {
  opened = detail;
  const box = $('#registry-compound');
  selectTab('work');
  box.hidden = false;
  box.replaceChildren(el('p', { class: 'muted' }, '正在读取……'));
  try {
    const parties = await api(`/registry/compounds/${detail.code}/parties`);
    box.replaceChildren(...[el('h4', {}, `小区登记信息维护 ${detail.code}`),
      message ? el('p', { id: 'registry-result', class: 'hint' }, `已保存：${message}`) : null,
      ...managementForms(detail.code, parties), termForm(detail.code, parties), el('h5', {}, '网格员'),
      ...workerForms(parties), el('h5', {}, '党组织'), ...partyForms(parties)].filter(Boolean)); // a form not offered is left out
    box.dataset.compound = detail.code;
  } catch (error) {
    box.replaceChildren(el('p', { class: 'warn' }, error.message));
  }
}

/* --- a company's own information, and the street's review ------------------------------------------------ */

function proposalText(p) {
  return Object.entries(p.proposed).map(([name, value]) =>
    `${COMPANY_FIELDS[name] || name}：${yesNo(p.old[name])} → ${yesNo(value)}`).join('；');
}

async function showCompany() {
  const box = $('#registry-company');
  try {
    const own = await api('/registry/company');
    const c = own.company;
    const p = own.latest_proposal;
    box.replaceChildren(el('h4', {}, `本企业基本信息：${c.name}`),
      el('dl', {}, ...Object.entries(COMPANY_FIELDS).flatMap(([name, label]) => [el('dt', {}, label), el('dd', {}, yesNo(c[name]))])),
      p ? el('p', { id: 'registry-proposal-state', 'data-state': p.state, class: p.state === 'rejected' ? 'warn' : 'hint' },
        `最近一次变更申请（${beijingTime(p.proposed_at)} 提交）：${STATE_TEXT[p.state]}`,
        p.decision_reason ? `，${p.decision_reason}` : '', el('div', { class: 'muted' }, proposalText(p))) : null,
      offered('POST', '/registry/company/proposals', form('registry-propose', '申请变更基本信息（提交后由街道审核）', [
        text('contact_name', '联系人', { value: c.contact_name || '' }), text('contact_phone', '联系电话', { value: c.contact_phone || '' }),
        check('has_party_org', '有党组织', c.has_party_org), check('party_work_only', '未建党组织但开展党的工作', c.party_work_only),
      ], (v) => post('/registry/company/proposals', v).then(() => '已提交，等待街道审核'), showCompany)));
  } catch (error) {
    box.replaceChildren(el('p', { class: 'warn' }, error.message));
  }
}

async function decide(p, approve, reasonInput, note) {
  try {
    await post(`/registry/proposals/${p.id}/${approve ? 'approve' : 'reject'}`, { reason: orNull(reasonInput.value.trim()) });
    showProposals();
  } catch (error) {
    note.textContent = `未处理：${error.message}`;
    note.classList.add('warn');
  }
}

async function showProposals() {
  const box = $('#registry-proposals');
  try {
    const pending = await api('/registry/proposals?state=pending');
    box.replaceChildren(el('h4', {}, '待审核的企业信息变更'), el('ul', { class: 'list' }, ...(pending.length ? pending.map((p) => {
      const why = el('input', { placeholder: '审核意见（驳回必填）', 'aria-label': '审核意见' });
      const note = el('span', { class: 'hint' });
      return el('li', { 'data-proposal': p.id }, el('strong', {}, p.company_name), ` ${beijingTime(p.proposed_at)}`,
        el('div', {}, proposalText(p)), why,
        el('button', { type: 'button', class: 'approve', onclick: () => decide(p, true, why, note) }, '通过'),
        el('button', { type: 'button', class: 'reject', onclick: () => decide(p, false, why, note) }, '驳回'), note);
    }) : [el('li', { class: 'muted' }, '没有待审核的申请')])));
  } catch (error) {
    box.replaceChildren(el('p', { class: 'warn' }, error.message));
  }
}

function showForRole() {
  const role = session.token ? session.role : null;
  const edits = EDIT_ROLES.includes(role) && has('GET', PARTIES);
  const company = role === 'property_company' && has('GET', '/registry/company');
  const reviews = REVIEW_ROLES.includes(role) && has('GET', '/registry/proposals');
  $('#registry-box').hidden = !(edits || company || reviews);
  $('#registry-compound').hidden = !edits || !opened;
  $('#registry-hint').hidden = !edits;
  $('#registry-company').hidden = !company;
  $('#registry-proposals').hidden = !reviews;
  if (!edits) opened = null;
  if (company) showCompany();
  if (reviews) showProposals();
}

export function initRegistry() {
  on('registry:edit', (detail) => { if (mayEdit(detail.code)) openCompound(detail); });
  on('session:change', showForRole);
  on('session:start', showForRole);
  showForRole();
}
