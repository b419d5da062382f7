/* A company's credit file (信用档案), opened from the red/black list: its standing and credit grade, the
 * evaluations over the periods, rectification tasks with deadline and result, the regulator's inspections, the
 * street and community ratings, the credit items it reported with their review, and the compounds it manages
 * (outlined on the map by highlight.js). Read from GET /analytics/companies/{id}/credit-file (each part) and
 * GET /evaluation/credit-items (scoped to the caller by the API). */
import { api } from '../api.js';
import { $, el } from '../dom.js';
import { beijingLabelled } from '../desk/format.js';
import {
  CREDIT_CATEGORIES, CREDIT_GRADES, CREDIT_KINDS, MODE_NAMES, RATER_LEVELS, RECTIFICATION_RESULTS, REVIEW_STATES,
} from '../names.js';
import { standingBadge } from './list.js';

const PARTS = ['evaluations', 'inspections', 'ratings', 'rectifications'];
const score = (value) => (value === null || value === undefined ? '—' : Number(value).toFixed(1));
const text = (value) => (value === null || value === undefined || value === '' ? '—' : String(value));

function table(id, title, headers, rows, cells, empty) {
  return el('section', { class: 'credit-part', id },
    el('h4', {}, `${title}（${rows.length}）`),
    rows.length ? el('div', { class: 'rating-table-wrap' }, el('table', { class: 'desk-table credit-table' },
      el('thead', {}, el('tr', {}, headers.map((h) => el('th', {}, h)))),
      el('tbody', {}, rows.map((row) => el('tr', {}, cells(row).map((c) => el('td', {}, c)))))))
      : el('p', { class: 'hint' }, empty));
}

/* A compound's name when the company manages it now, else its code (one it managed before). */
function placeName(compounds, code) {
  if (!code) return '—';
  const place = compounds.find((c) => c.code === code);
  return place ? place.name : code;
}

function periodStanding(row) {
  if (row.grade === 'insufficient') return standingBadge('insufficient');
  return standingBadge(row.standing || 'none');
}

function facts(info, compounds) {
  const grade = info.credit_grade ? `${info.credit_grade}（${CREDIT_GRADES[info.credit_grade] || ''}）` : '—';
  const facts = [
    ['统一社会信用代码', text(info.credit_code)],
    ['信用等级', `${grade}，信用分 ${score(info.credit_score)}`],
    ['管理小区', `${compounds.length} 个（地图上以紫色轮廓标出）`],
    ['上榜次数', `红榜 ${info.times_red || 0} 次，黑榜 ${info.times_black || 0} 次`],
    ['企业类型', info.is_community_led ? '社区领办物业' : '市场化物业'],
    ['党组织', info.has_party_org ? '已建立党组织' : info.party_work_only ? '开展党的工作' : '未建立'],
  ];
  if (info.flagged_for_exit) facts.push(['清退', '连续两期黑榜且未通过整改，已列入清退']);
  return el('dl', { class: 'credit-facts' }, facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function sections(parts, items, compounds) {
  return [
    table('credit-evaluations', '历次评价', ['期间', '总分', '居民', '主管部门', '街道社区', '排名', '榜单'],
      parts.evaluations.rows, (r) => [r.period, score(r.total_score), score(r.residents_score),
        score(r.regulator_score), score(r.street_score), r.rank ? `${r.rank}/${r.companies_ranked}` : '—',
        periodStanding(r)], '尚无已保存的评价'),
    table('credit-rectifications', '整改任务', ['期间', '整改期限', '整改事项', '复查结果', '复查时间'],
      parts.rectifications.rows, (r) => [r.period, text(r.deadline), text(r.items),
        RECTIFICATION_RESULTS[r.result] || text(r.result), r.followed_up_at ? beijingLabelled(r.followed_up_at) : '—'],
      '没有整改任务'),
    table('credit-inspections', '行业主管部门检查', ['检查日期', '小区', '得分', '问题数', '说明'],
      parts.inspections.rows, (r) => [r.inspected_on, placeName(compounds, r.compound_code), score(r.score),
        text(r.findings), text(r.note)], '没有检查记录'),
    table('credit-ratings', '街道、社区评分', ['期间', '评分单位', '单位代码', '得分'],
      parts.ratings.rows, (r) => [r.period, RATER_LEVELS[r.rater_level] || r.rater_level, r.rater_code,
        score(r.score)], '没有评分记录'),
    items.error ? el('section', { class: 'credit-part', id: 'credit-items' }, el('h4', {}, '企业报送的信用信息'),
      el('p', { class: 'hint' }, `无法查看：${items.error}`))
      : table('credit-items', '企业报送的信用信息', ['类别', '事项', '标题', '发生日期', '审核状态', '审核意见'],
        items.rows, (r) => [CREDIT_KINDS[r.kind] || r.kind, CREDIT_CATEGORIES[r.category] || r.category, r.title,
          r.occurred_on, REVIEW_STATES[r.status] || r.status, text(r.review_reason)], '没有报送的信用信息'),
    table('credit-compounds', '管理的小区', ['小区', '社区', '物业模式', '户数'], compounds,
      (c) => [c.name, text(c.community_name), MODE_NAMES[c.management_mode] || c.management_mode, text(c.households)],
      '当前没有管理的小区'),
  ];
}

/* Fetches and draws the credit file of a company into #rating-file; `collection` is its compounds (GeoJSON). */
export async function showFile(company, collection) {
  const box = $('#rating-file');
  box.replaceChildren(el('p', { class: 'hint' }, '正在打开信用档案…'));
  const base = `/analytics/companies/${company.id}/credit-file`;
  const [parts, items] = await Promise.all([
    Promise.all(PARTS.map((part) => api(`${base}?part=${part}`))).then((answers) =>
      Object.fromEntries(PARTS.map((part, i) => [part, answers[i]]))),
    api(`/evaluation/credit-items?company_id=${company.id}`).catch((error) => ({ error: error.message, rows: [] })),
  ]);
  const compounds = ((collection && collection.features) || []).map((f) => f.properties);
  const info = parts.evaluations.meta || {};
  box.replaceChildren(
    el('h4', { class: 'credit-name', id: 'credit-name' }, info.name || company.name),
    facts(info, compounds), ...sections(parts, items, compounds));
}
