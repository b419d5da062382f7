/* The monthly trend of the four rates as a small SVG line chart drawn here (no chart library): months along
 * the bottom, 0-100% up the side, one line per rate, and a click on a point opens the tickets behind it. */

const NS = 'http://www.w3.org/2000/svg';
export const TREND_COLOURS = { response: '#2e86c1', handled: '#7f8c8d', resolution: '#1e8449', on_time: '#f39c12',
  satisfaction: '#8e44ad' };
const SIZE = { width: 600, height: 220, left: 44, right: 12, top: 14, bottom: 40 };

function svg(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/* rows: the by=month answer of one unit, oldest first; rates: [{name, title, numerator, denominator}];
 * onPoint(row, rate) is called when a point is clicked. Answers a <figure> with the chart and its legend. */
export function drawTrend(rows, rates, onPoint) {
  const figure = document.createElement('figure');
  figure.className = 'trend';
  if (!rows.length) {
    figure.append('所选期间内没有按月数据。');
    return figure;
  }
  const { width, height, left, right, top, bottom } = SIZE;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': '考核率按月趋势', id: 'rates-chart' });
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const x = (i) => left + (rows.length === 1 ? plotW / 2 : (i * plotW) / (rows.length - 1));
  const y = (value) => top + plotH * (1 - value);
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(svg('line', { x1: left, x2: width - right, y1: y(tick), y2: y(tick), class: 'grid-line' }));
    chart.append(svg('text', { x: left - 6, y: y(tick) + 4, 'text-anchor': 'end', class: 'axis' }, `${tick * 100}%`));
  }
  const every = Math.max(1, Math.ceil(rows.length / 12));
  rows.forEach((row, i) => {
    if (i % every === 0) {
      chart.append(svg('text', { x: x(i), y: height - bottom + 16, 'text-anchor': 'middle', class: 'axis' },
        `${Number(row.month.slice(5, 7))}月`));
      if (i === 0 || row.month.endsWith('-01')) {
        chart.append(svg('text', { x: x(i), y: height - bottom + 30, 'text-anchor': 'middle', class: 'axis year' },
          `${row.month.slice(0, 4)}年`));
      }
    }
  });
  for (const rate of rates) {
    const key = `${rate.name}_rate`;
    const points = rows.map((row, i) => [i, row[key]]).filter(([, v]) => v !== null && v !== undefined);
    if (points.length > 1) {
      chart.append(svg('polyline', { points: points.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
        fill: 'none', stroke: TREND_COLOURS[rate.name], 'stroke-width': 2 }));
    }
    for (const [i, value] of points) {
      const row = rows[i];
      const dot = svg('circle', { cx: x(i).toFixed(1), cy: y(value).toFixed(1), r: 4, fill: TREND_COLOURS[rate.name],
        class: 'trend-point', 'data-rate': rate.name, 'data-month': row.month,
        'data-numerator': row[rate.numerator], 'data-denominator': row[rate.denominator] });
      dot.append(svg('title', {}, `${row.month} ${rate.title} ${(value * 100).toFixed(1)}%（${row[rate.numerator]}/${row[rate.denominator]}），点击查看工单`));
      dot.addEventListener('click', () => onPoint(row, rate));
      chart.append(dot);
    }
  }
  const legend = document.createElement('figcaption');
  for (const rate of rates) {
    const item = document.createElement('span');
    item.className = 'legend-item';
    const swatch = document.createElement('i');
    swatch.style.background = TREND_COLOURS[rate.name];
    item.append(swatch, rate.title);
    legend.append(item);
  }
  figure.append(chart, legend);
  return figure;
}
