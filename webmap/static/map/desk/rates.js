/* The five rates per unit of a level for a chosen period: a ranked table (units below the minimum sample are
 * listed after the ranked ones, labelled, not ranked), the monthly trend of one unit, and a click on any figure
 * asks for the tickets behind it (desk:drill). Figures and definitions are the API's (GET /tickets/rates). */
import { api } from '../api.js';
import { emit, on } from '../bus.js';
import { $, el } from '../dom.js';
import { beijingDate, beijingToday, nextDay, percent } from './format.js';
import { drawTrend } from './trend.js';

export const RATES = [
  { name: 'response', title: '响应率', numerator: 'responded_in_time', denominator: 'dispatched', denominatorName: '已派遣' },
  { name: 'handled', title: '办结率', numerator: 'closed', denominator: 'tickets', denominatorName: '工单',
    hint: '已核查结案的工单占全部工单的比例' },
  { name: 'resolution', title: '解决率', numerator: 'resolved', denominator: 'tickets', denominatorName: '工单',
    hint: '结案后问题确已解决的比例：结案后窗口期内同一小区（或楼栋）同类问题再次投诉（重复投诉），或回访时居民说未解决的，只算办结，不算解决' },
  { name: 'on_time', title: '按时办结率', numerator: 'closed_in_time', denominator: 'closed', denominatorName: '已结案' },
  { name: 'satisfaction', title: '满意率', numerator: 'satisfied', denominator: 'rated', denominatorName: '已评价或回访',
    hint: '每位居民的答复只计一次：评价与回访中较晚的一次为准' },
];
const LEVELS = { grid: '网格', community: '社区', property_company: '物业企业', department: '部门', street: '街道' };

let answer = null; // the last GET /tickets/rates answer
let trendUnit = null; // {level, unit, name} of the trend shown

function period() {
  const from = $('#rates-from').value;
  const to = $('#rates-to').value;
  return { from, to: to ? nextDay(to) : '' };
}

function controls() {
  return el('div', { class: 'desk-controls' },
    el('label', {}, '层级', el('select', { id: 'rates-level' },
      ...Object.entries(LEVELS).map(([value, name]) => el('option', { value }, name)))),
    el('label', {}, '起始日期', el('input', { type: 'date', id: 'rates-from', value: beijingToday(-364) })),
    el('label', {}, '截止日期（含）', el('input', { type: 'date', id: 'rates-to', value: beijingToday() })),
    el('label', {}, '排名依据', el('select', { id: 'rates-sort' },
      ...RATES.map((r) => el('option', { value: r.name }, r.title)))),
    el('button', { type: 'button', id: 'rates-load' }, '查询'));
}

/* A rate's cell: the percentage, its numerator over denominator and its rank; a click opens its tickets. */
function rateCell(row, rate, level) {
  const key = `${rate.name}_rate`;
  const rank = row[`${rate.name}_rank`];
  const unranked = (row.unranked || []).includes(rate.name);
  return el('td', { class: `figure${unranked ? ' unranked' : ''}` },
    el('button', { type: 'button', class: 'figure-link', 'data-rate': rate.name, 'data-unit': row.unit,
      'data-numerator': row[rate.numerator], 'data-denominator': row[rate.denominator],
      title: `查看${rate.title}背后的工单`,
      onclick: () => emit('desk:drill', Object.assign({ rate: rate.name, title: rate.title, level, unit: row.unit,
        name: row.name || row.unit, numerator: row[rate.numerator], denominator: row[rate.denominator] }, period())) },
    percent(row[key])),
    el('span', { class: 'fraction' }, `${row[rate.numerator]}/${row[rate.denominator]}`),
    el('span', { class: 'rank' }, unranked ? '样本不足' : (rank ? `第${rank}` : '')),
    rate.name === 'resolution' && (row.repeated || row.callback_unsolved)
      ? el('span', { class: 'repeat-note', 'data-repeated': row.repeated || 0 },
        [row.repeated ? `重复投诉 ${row.repeated}` : null, row.callback_unsolved ? `回访未解决 ${row.callback_unsolved}` : null]
          .filter(Boolean).join(' · '))
      : null);
}

function table(rows, level, sort, minSample) {
  const ranked = rows.filter((r) => r[`${sort}_rank`] !== null && r[`${sort}_rank`] !== undefined);
  const unranked = rows.filter((r) => r[`${sort}_rank`] === null || r[`${sort}_rank`] === undefined);
  const sortTitle = RATES.find((r) => r.name === sort).title;
  const line = (row) => el('tr', { 'data-unit': row.unit, class: unranked.includes(row) ? 'unranked' : '' },
    el('td', { class: 'rank-cell' }, unranked.includes(row) ? el('span', { class: 'badge' }, '不排名') : String(row[`${sort}_rank`])),
    el('td', { class: 'unit' }, el('button', { type: 'button', class: 'unit-link', title: '查看按月趋势',
      onclick: () => showTrend({ level, unit: row.unit, name: row.name || row.unit }) }, row.name || row.unit)),
    el('td', {}, String(row.tickets)),
    ...RATES.map((rate) => rateCell(row, rate, level)),
    el('td', { class: row.overdue_open ? 'warn' : '' }, String(row.overdue_open)));
  return el('table', { id: 'rates-table', class: 'desk-table' },
    el('thead', {}, el('tr', {}, el('th', {}, `排名（${sortTitle}）`), el('th', {}, LEVELS[level]), el('th', {}, '工单'),
      ...RATES.map((r) => el('th', { title: r.hint || '' }, r.title)), el('th', {}, '超期未结'))),
    el('tbody', {}, ...ranked.map(line),
      unranked.length ? el('tr', { class: 'divider' }, el('td', { colspan: RATES.length + 4 },
        `以下 ${unranked.length} 个单位的${sortTitle}样本不足 ${minSample} 件，列出但不排名`)) : null,
      ...unranked.map(line)));
}

async function loadRates() {
  const level = $('#rates-level').value;
  const sort = $('#rates-sort').value;
  const { from, to } = period();
  const note = $('#rates-note');
  note.textContent = '正在计算……';
  try {
    const params = new URLSearchParams({ level, sort });
    if (from) params.set('from', from);
    if (to) params.set('to', to);
    answer = await api(`/tickets/rates?${params}`);
    const rows = answer.rows || [];
    $('#rates-result').replaceChildren(rows.length ? table(rows, level, sort, answer.min_sample)
      : el('p', { class: 'hint' }, '所选期间内没有工单。'));
    note.textContent = `期间 ${beijingDate(answer.from)} 至 ${beijingDate(new Date(new Date(answer.to).getTime() - 1).toISOString())}`
      + `（${'北京时间'}），${rows.length} 个单位；某项考核率的样本少于 ${answer.min_sample} 件的单位只列出、不排名。`
      + `办结率只看是否结案；解决率不计结案后 ${answer.repeat_window_days} 天内同一小区（或楼栋）同类问题又被投诉的结案（重复投诉）和回访时居民说未解决的结案。`
      + '点击数字可查看背后的工单，点击单位名称可查看按月趋势。';
    note.dataset.loaded = String(rows.length);
    const keep = trendUnit && trendUnit.level === level && rows.find((r) => r.unit === trendUnit.unit);
    const first = keep || rows[0];
    if (first) showTrend({ level, unit: first.unit, name: first.name || first.unit });
    else $('#rates-trend').replaceChildren();
  } catch (error) {
    note.textContent = `查询失败：${error.message}`;
  }
}

/* The monthly trend of one unit (GET /tickets/rates?by=month&unit=...). */
async function showTrend(target) {
  trendUnit = target;
  const { from, to } = period();
  const params = new URLSearchParams({ level: target.level, by: 'month', unit: target.unit });
  if (from) params.set('from', from);
  if (to) params.set('to', to);
  const box = $('#rates-trend');
  try {
    const months = (await api(`/tickets/rates?${params}`)).rows || [];
    box.replaceChildren(el('h4', {}, `${target.name} · 按月趋势`),
      drawTrend(months, RATES, (row, rate) => emit('desk:drill', { rate: rate.name, title: rate.title,
        level: target.level, unit: target.unit, name: `${target.name} ${row.month}`,
        from: beijingDate(row.from), to: beijingDate(row.to), numerator: row[rate.numerator],
        denominator: row[rate.denominator] })));
    box.dataset.unit = target.unit;
  } catch (error) {
    box.replaceChildren(el('p', { class: 'hint' }, `趋势查询失败：${error.message}`));
  }
}

export function initRates() {
  $('#desk-rates').replaceChildren(controls(), el('p', { id: 'rates-note', class: 'hint' }),
    el('div', { id: 'rates-result' }), el('div', { id: 'rates-trend' }));
  $('#rates-load').addEventListener('click', loadRates);
  $('#rates-level').addEventListener('change', loadRates);
  $('#rates-sort').addEventListener('change', loadRates);
  on('desk:open', ({ view }) => { if (view === 'rates' && !answer) loadRates(); });
}
