/* 未诉先办 in the desk's sheet: the month's recurring problems (每月一题) of the city with their figures, a
 * button that opens proactive tasks (主动治理任务) where new, consecutive, intensifying or persistent hot spots
 * are, and the open tasks of the caller's scope, each completed with one click. */
import { api, has } from '../api.js';
import { on } from '../bus.js';
import { $, el } from '../dom.js';

/* A wide table scrolls sideways inside the sheet on a phone instead of squeezing its names to a word a line. */
function scrolling(table) {
  const box = el('div', { class: 'proactive-scroll' }, table);
  box.style.overflowX = 'auto';
  box.style.maxWidth = '100%';
  table.querySelectorAll('td.unit').forEach((cell) => { cell.style.minWidth = '8em'; });
  return box;
}

function problemsTable(rows) {
  const head = ['序号', '社区', '问题类别', '本月', '上月', '近12个月', '有投诉月数', '热点微网格', '时空模式'];
  return el('table', { id: 'problems-table', class: 'desk-table' },
    el('thead', {}, el('tr', {}, ...head.map((title) => el('th', {}, title)))),
    el('tbody', {}, ...rows.map((r) => el('tr', { 'data-community': r.community_code, 'data-category': r.category_code },
      el('td', {}, String(r.rank)),
      el('td', { class: 'unit' }, `${r.street_name || ''} ${r.community_name || r.community_code}`),
      el('td', {}, r.category_name || r.category_code),
      el('td', {}, String(r.complaints_month)), el('td', {}, String(r.complaints_previous_month)),
      el('td', {}, String(r.complaints_window)), el('td', {}, `${r.months_with_complaints}/12`),
      el('td', {}, String(r.hot_micro_grids)), el('td', { class: 'unit' }, r.patterns_zh)))));
}

function tasksTable(rows) {
  const head = ['编号', '微网格', '问题类别', '时空模式', '发起月份', '网格员', '网格党支部', ''];
  return el('table', { id: 'proactive-tasks', class: 'desk-table' },
    el('thead', {}, el('tr', {}, ...head.map((title) => el('th', {}, title)))),
    el('tbody', {}, ...rows.map((t) => {
      const done = el('button', { type: 'button', class: 'link', 'data-task': t.id }, '标记完成');
      done.addEventListener('click', async () => {
        done.disabled = true;
        try {
          await api(`/analytics/proactive/${t.id}/done`, { method: 'POST' });
          loadTasks();
        } catch (error) {
          done.disabled = false;
          $('#proactive-note').textContent = `操作失败：${error.message}`;
        }
      });
      return el('tr', { 'data-task': t.id },
        el('td', {}, `#${t.id}`), el('td', {}, t.area_code), el('td', {}, t.category_name || t.category_code),
        el('td', {}, t.pattern_zh || ''), el('td', {}, t.opened_month), el('td', {}, `${t.grid_workers} 人`),
        el('td', {}, t.party_organisation_code || '—'), el('td', {}, done));
    })));
}

async function loadProblems() {
  const box = $('#problems-result');
  box.replaceChildren(el('p', { class: 'hint' }, '正在计算本月的突出问题……'));
  try {
    const answer = await api('/analytics/monthly-problems?limit=10');
    $('#problems-title').textContent = answer.meta.title;
    box.replaceChildren(answer.rows.length ? scrolling(problemsTable(answer.rows))
      : el('p', { class: 'hint' }, '本月没有反复出现的突出问题。'));
  } catch (error) {
    box.replaceChildren(el('p', { class: 'hint' }, `每月一题查询失败：${error.message}`));
  }
}

async function loadTasks() {
  const box = $('#proactive-result');
  try {
    const answer = await api('/analytics/proactive?state=open&limit=200');
    box.replaceChildren(el('h4', {}, `未完成的主动治理任务（${answer.rows.length} 项）`),
      answer.rows.length ? scrolling(tasksTable(answer.rows)) : el('p', { class: 'hint' }, '没有未完成的主动治理任务。'));
  } catch (error) {
    box.replaceChildren(el('p', { class: 'hint' }, `主动治理任务查询失败：${error.message}`));
  }
}

async function openTasks(button) {
  button.disabled = true;
  $('#proactive-note').textContent = '正在分析新增、连续、加剧和持续热点……';
  try {
    const answer = await api('/analytics/proactive', { method: 'POST' });
    $('#proactive-note').textContent = `${answer.meta.month}：新发起 ${answer.meta.opened} 项，`
      + `已有任务 ${answer.meta.already_open} 项（每个微网格 × 类别只发起一次）。`;
    loadTasks();
  } catch (error) {
    $('#proactive-note').textContent = `发起失败：${error.message}`;
  } finally {
    button.disabled = false;
  }
}

export function initProactive() {
  const view = $('#desk-proactive');
  if (!view) return;
  const start = el('button', { type: 'button', id: 'proactive-open', class: 'primary' }, '发起主动治理任务');
  start.addEventListener('click', () => openTasks(start));
  view.replaceChildren(
    el('h4', { id: 'problems-title' }, '每月一题'),
    el('p', { class: 'hint' }, '本月仍有投诉、且有微网格处于热点的社区 × 问题类别，按反复出现的月数和投诉量排序。'),
    el('div', { id: 'problems-result' }),
    el('h4', {}, '主动治理（未诉先办）'),
    el('div', { class: 'row' }, start),
    el('p', { class: 'hint', id: 'proactive-note' },
      '为新增、连续、加剧或持续热点的微网格 × 类别发起任务，派给所在网格的网格员和网格党支部。'),
    el('div', { id: 'proactive-result' }));
  on('desk:open', ({ view: name }) => {
    if (name !== 'proactive') return;
    if (has('GET', '/analytics/monthly-problems')) loadProblems();
    loadTasks();
  });
}
