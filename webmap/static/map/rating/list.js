/* The red/black list (红黑榜) of a half-year or a year as a sortable table: each company's parts, total, rank
 * and standing, from GET /analytics/evaluations/{period} (stored, else a preview). A street office or community
 * gets the companies serving its area (`within`, the API's rule) with their ranks in the whole list; the
 * administrator may compute and store a period (POST). A click on a company asks for its credit file
 * (rating:open). */
import { api, session } from '../api.js';
import { emit } from '../bus.js';
import { $, el } from '../dom.js';
import { STANDING } from '../names.js';

const AREA_ROLES = ['street', 'community'];
const STANDING_ORDER = { red: 0, none: 1, black: 2, insufficient: 3 };

let answer = null; // the last answer: {meta, rows}
let sort = { key: 'rank', descending: false };
let latest = 0; // the newest request: an older answer arriving later is dropped

/* A row's standing: red, black, none (listed, neither) or insufficient (数据不足, not ranked). */
export const standingOf = (row) => (row.insufficient_data ? 'insufficient' : row.standing || 'none');

export function standingBadge(standing) {
  const [label, badge] = STANDING[standing] || [standing, ''];
  return el('span', { class: `standing standing-${standing}${badge ? ` badge ${badge}` : ''}` }, label);
}

/* The half-years and years a person may choose: this half-year and the ones before, each year after its
 * halves. */
export function periodChoices(today) {
  const [year, month] = today.split('-').map(Number);
  const out = [];
  for (let y = year; y >= year - 2; y -= 1) {
    for (const half of [2, 1]) {
      if (y === year && half === 2 && month <= 6) continue;
      out.push({ value: `${y}H${half}`, label: `${y}年${half === 1 ? '上' : '下'}半年（${y}H${half}）` });
    }
    out.push({ value: String(y), label: `${y}年度年终评定（${y}）` });
  }
  return out;
}

const score = (value) => (value === null || value === undefined ? '—' : Number(value).toFixed(1));

function columns(meta, rows) {
  const weights = meta.weights || {};
  const split = rows.some((row) => row.community_score !== null && row.community_score !== undefined);
  const weighted = (title, weight) => (weight ? `${title}（${weight}）` : title);
  return [
    { key: 'rank', title: '排名' },
    { key: 'name', title: '企业' },
    { key: 'residents_score', title: weighted('居民评价', weights.residents), short: '居民', score: true, part: true },
    { key: 'regulator_score', title: weighted('行业主管部门', weights.regulator), short: '主管部门', score: true,
      part: true },
    split ? { key: 'street_score', title: weighted('街道评价', weights.street), short: '街道', score: true, part: true }
      : { key: 'street_score', title: weighted('街道社区评价', weights.street_and_community), short: '街道社区',
        score: true, part: true },
    split && { key: 'community_score', title: weighted('社区党组织', weights.community_party), short: '社区党组织',
      score: true, part: true },
    { key: 'total_score', title: '总分', score: true },
    { key: 'standing', title: '榜单' },
  ].filter(Boolean);
}

function compare(a, b) {
  const { key, descending } = sort;
  let x = key === 'standing' ? STANDING_ORDER[standingOf(a)] : a[key];
  let y = key === 'standing' ? STANDING_ORDER[standingOf(b)] : b[key];
  if (x === null || x === undefined) x = null;
  if (y === null || y === undefined) y = null;
  if (x === null || y === null) return x === y ? a.company_id - b.company_id : x === null ? 1 : -1; // blanks last
  const order = typeof x === 'string' ? x.localeCompare(y, 'zh-CN') : x - y;
  return (descending ? -order : order) || a.company_id - b.company_id;
}

function missingText(row) {
  try {
    const inputs = JSON.parse(row.inputs || '{}');
    return (inputs.insufficient || []).join('；');
  } catch (error) {
    return '';
  }
}

function headCell(column) {
  const active = sort.key === column.key;
  const arrow = active ? (sort.descending ? ' ▼' : ' ▲') : '';
  return el('th', { 'data-key': column.key, class: column.part ? 'part' : null, 'aria-sort': active ? (sort.descending ? 'descending' : 'ascending') : 'none' },
    el('button', { type: 'button', class: 'sort', title: `按${column.title}排序`, onclick: () => {
      sort = { key: column.key, descending: active ? !sort.descending : column.score === true };
      draw();
    } }, column.title + arrow));
}

function bodyRow(row, cols) {
  const standing = standingOf(row);
  const cells = cols.map((column) => {
    if (column.key === 'rank') return el('td', { class: 'rank-cell' }, row.rank ?? '—');
    if (column.key === 'name') {
      // on a phone the parts' columns give way to one line under the name
      const parts = cols.filter((c) => c.part).map((c) => `${c.short} ${score(row[c.key])}`).join(' · ');
      return el('td', { class: 'company' }, el('button', { type: 'button', class: 'company-link',
        'data-company-id': row.company_id, onclick: () => emit('rating:open', { id: row.company_id, name: row.name }) },
      row.name), el('span', { class: 'parts-line' }, parts));
    }
    if (column.key === 'standing') {
      return el('td', { class: 'standing-cell', title: standing === 'insufficient' ? missingText(row) : null },
        standingBadge(standing));
    }
    return el('td', { class: column.part ? 'score part' : 'score total' }, score(row[column.key]));
  });
  return el('tr', { class: `standing-${standing}`, 'data-company-id': row.company_id }, cells);
}

function summary(meta) {
  const rows = answer.rows;
  const count = (standing) => rows.filter((row) => standingOf(row) === standing).length;
  const parts = [meta.stored ? '已计算保存的评价' : '预览：本期尚未计算保存，数字随录入变化',
    `企业 ${rows.length} 家：红榜 ${count('red')}、黑榜 ${count('black')}、数据不足 ${count('insufficient')}`];
  if (meta.within) parts.push('仅列服务本辖区小区的企业，排名为全市排名');
  if (meta.kind === 'year-end' || /^\d{4}$/.test(meta.period || '')) parts.push('年终评定：两个半年逐项平均');
  return parts.join('。');
}

function draw() {
  const box = $('#rating-list');
  if (!answer) { box.replaceChildren(); return; }
  const cols = columns(answer.meta, answer.rows);
  const rows = answer.rows.slice().sort(compare);
  box.replaceChildren(
    el('p', { class: 'hint', id: 'rating-summary' }, summary(answer.meta)),
    el('div', { class: 'rating-table-wrap' }, el('table', { class: 'desk-table rating-table', id: 'rating-table' },
      el('thead', {}, el('tr', {}, cols.map(headCell))),
      el('tbody', {}, rows.length ? rows.map((row) => bodyRow(row, cols))
        : el('tr', {}, el('td', { colspan: cols.length }, '本辖区没有参与本期评价的物业服务企业'))))));
}

function computeButton(period) {
  const button = $('#rating-compute');
  const allowed = session.role === 'admin';
  button.hidden = !allowed || !answer;
  if (!answer) return;
  button.textContent = answer.meta.stored ? '重新计算并保存' : '计算并保存本期评价';
  button.onclick = () => loadList(period, { compute: true });
}

/* Fetches and draws the list of a period; with compute, runs and stores it first (administrators). */
export async function loadList(period, { compute = false } = {}) {
  const note = $('#rating-note');
  const mine = ++latest;
  note.textContent = compute ? '正在计算并保存…' : '加载中…';
  const scope = session.me && session.me.scope;
  const within = AREA_ROLES.includes(session.role) && scope && scope.length ? `?within=${scope.join(',')}` : '';
  let got = null;
  let failure = '';
  try {
    if (compute) await api(`/analytics/evaluations/${encodeURIComponent(period)}`, { method: 'POST' });
    got = await api(`/analytics/evaluations/${encodeURIComponent(period)}${within}`);
  } catch (error) {
    failure = `${compute ? '未能计算' : '未能打开红黑榜'}：${error.message}`;
  }
  if (mine !== latest) return answer;
  answer = got;
  note.textContent = failure || (compute ? '已计算并保存' : '');
  draw();
  computeButton(period);
  return answer;
}

export const listAnswer = () => answer;
