/* The planner's dashboard: the programme figures of one area as of a day (Beijing time), each with its target,
 * the gap and a monthly trend drawn as a small inline SVG; everything comes from /analytics/programme, the one
 * definition the map and the exports share. */
import { api } from '/static/map/api.js';

const $ = (selector) => document.querySelector(selector);
const NS = 'http://www.w3.org/2000/svg';

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/* Today in Beijing as YYYY-MM-DD, whatever the browser's own time zone. */
export function beijingToday() {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' })
    .format(new Date());
}

const percent = (value) => `${(100 * value).toFixed(1)}%`;

/* The value as people read it: a share in percent, a count with its unit. */
export function shown(row, value = row.value) {
  if (value === null || value === undefined) return '无数据';
  return row.kind === 'share' ? percent(value) : `${value.toLocaleString('zh-CN')} ${row.unit_label}`;
}

function gapText(row) {
  if (row.target === null || row.target === undefined) return '未设目标';
  if (row.value === null) return '无数据';
  if (row.met) return '已达标';
  return row.kind === 'share' ? `差 ${(100 * row.gap).toFixed(1)} 个百分点` : `差 ${row.gap} ${row.unit_label}`;
}

function sparkline(row, months) {
  const width = 260; const height = 60; const pad = 6;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${row.title}按月趋势`,
    class: 'trend', 'data-key': row.key });
  const values = months.map((month) => month[row.key]);
  const known = values.filter((v) => v !== null && v !== undefined);
  if (!known.length) { chart.append(svg('text', { x: pad, y: height / 2 }, '无按月数据')); return chart; }
  let low = Math.min(...known); let high = Math.max(...known);
  // the range in words, so a flat line reads as "unchanged" rather than as a chart that failed to draw
  const range = low === high ? `各月持平：${shown(row, low)}` : `最低 ${shown(row, low)}，最高 ${shown(row, high)}`;
  if (row.target !== null && row.kind === 'share') { low = Math.min(low, row.target); high = Math.max(high, row.target); }
  if (row.kind === 'share') { low = Math.max(0, low - 0.05); high = Math.min(1, high + 0.05); }
  if (high === low) { high = low + 1; }
  const x = (i) => pad + (months.length === 1 ? (width - 2 * pad) / 2 : (i * (width - 2 * pad)) / (months.length - 1));
  const y = (v) => height - 14 - ((v - low) / (high - low)) * (height - 24);
  if (row.target !== null && row.kind === 'share') {
    chart.append(svg('line', { x1: pad, x2: width - pad, y1: y(row.target), y2: y(row.target), class: 'goal' }));
  }
  const points = values.map((v, i) => [i, v]).filter(([, v]) => v !== null && v !== undefined);
  chart.append(svg('polyline', { class: 'line', points: points.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }));
  for (const [i, v] of points) {
    const dot = svg('circle', { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5, fill: '#2e86c1',
      'data-month': months[i].month, 'data-value': v });
    dot.append(svg('title', {}, `${months[i].month}（截至 ${months[i].as_of}）：${shown(row, v)}`));
    chart.append(dot);
  }
  chart.append(svg('text', { x: pad, y: height - 2 }, `${Number(months[0].month.slice(5))}月`));
  chart.append(svg('text', { x: width - pad, y: height - 2, 'text-anchor': 'end' }, `${Number(months[months.length - 1].month.slice(5))}月`));
  chart.append(svg('text', { x: width / 2, y: height - 2, 'text-anchor': 'middle', class: 'range' }, range));
  return chart;
}

function card(row, months) {
  const state = row.target === null || row.value === null ? '' : row.met ? 'met' : 'short';
  return el('article', { class: `card ${state}`, 'data-key': row.key },
    el('h3', {}, row.title),
    el('div', { class: 'value' }, shown(row)),
    el('div', {},
      el('span', { class: 'target' }, row.target === null ? '目标：无' : `目标：${shown(row, row.target)}`),
      el('span', { class: 'gap' }, gapText(row))),
    el('p', { class: 'desc' }, `${row.description}（${row.numerator.toLocaleString('zh-CN')} / ${row.denominator.toLocaleString('zh-CN')}）`),
    row.modes_label ? el('p', { class: 'desc' }, `计入的管理方式：${row.modes_label}`) : null,
    el('p', { class: 'source' }, `目标来源：${row.target_source}`),
    sparkline(row, months));
}

function query() {
  const params = new URLSearchParams({ level: $('#dash-level').value, as_of: $('#dash-date').value });
  if ($('#dash-level').value !== 'city') params.set('code', $('#dash-area').value);
  return params;
}

async function loadAreas() {
  const level = $('#dash-level').value;
  const select = $('#dash-area');
  if (level === 'city') { select.replaceChildren(el('option', { value: '' }, '全市')); select.disabled = true; return; }
  const body = await api(`/analytics/programme/gap_compounds?level=${level}&as_of=${$('#dash-date').value}`);
  select.replaceChildren(...body.rows.map((row) => el('option', { value: row.code }, `${row.name}（${row.code}）`)));
  select.disabled = false;
}

async function show() {
  const status = $('#dash-status');
  status.textContent = '正在统计……';
  try {
    const params = query();
    const trendParams = new URLSearchParams(params); trendParams.delete('as_of'); trendParams.set('until', params.get('as_of'));
    const [figures, trend] = await Promise.all([api(`/analytics/programme?${params}`),
      api(`/analytics/programme/trend?${trendParams}`)]);
    $('#dash-figures').replaceChildren(...figures.rows.map((row) => card(row, trend.rows)));
    const modes = figures.meta.modes;
    $('#dash-modes').replaceChildren(
      el('tr', {}, el('th', {}, '管理方式'), el('th', {}, '小区（个）'), el('th', {}, '其中老旧小区'), el('th', {}, '户数'), el('th', {}, '建筑面积（万平方米）')),
      ...modes.map((m) => el('tr', { 'data-mode': m.mode }, el('td', {}, m.name), el('td', {}, String(m.compounds)),
        el('td', {}, String(m.old_estates)), el('td', {}, m.households.toLocaleString('zh-CN')), el('td', {}, (m.floor_area_m2 / 10000).toFixed(1)))));
    $('#dash-rules').textContent = `空白点口径：${figures.meta.rules.gap}。`;
    const met = figures.rows.filter((row) => row.met === true).length;
    const targeted = figures.rows.filter((row) => row.met !== null).length;
    status.textContent = `${figures.meta.name}，截至 ${figures.meta.as_of}（北京时间）：设有目标的 ${targeted} 项指标中 ${met} 项已达标。`;
    params.set('format', 'xlsx');
    $('#dash-xlsx').href = `/analytics/programme?${params}`;
    document.body.dataset.ready = 'true';
  } catch (error) {
    status.textContent = error.message;
  }
}

async function start() {
  $('#dash-date').value = beijingToday();
  $('#dash-date').max = beijingToday();
  $('#dash-level').addEventListener('change', async () => { document.body.dataset.ready = 'false'; await loadAreas(); await show(); });
  $('#dash-area').addEventListener('change', () => { document.body.dataset.ready = 'false'; show(); });
  $('#dash-date').addEventListener('change', () => { document.body.dataset.ready = 'false'; show(); });
  await show();
}

start();
