/* The red/black list and credit files in the browser (红黑榜与信用档案): an entry in the planner tab (and in the
 * street desk), a sheet over the map with the list of a chosen half-year or year, and a company's credit file
 * with its compounds outlined on the map. For planners, the administrator, street offices and communities (the
 * last two see the companies serving their area). The parts talk through bus.js:
 *
 *   rating:open     a company's credit file is asked for; detail {id, name} (list.js)
 *   rating:closed   the sheet was closed or the selection cleared; the highlight is gone
 */
import { session } from '../api.js';
import { emit, on } from '../bus.js';
import { $, el } from '../dom.js';
import { beijingToday } from '../desk/format.js';
import { map } from '../state.js';
import { showFile } from './file.js';
import { clearHighlight, highlightCompany } from './highlight.js';
import { loadList, periodChoices } from './list.js';

const ROLES = ['planner', 'admin', 'street', 'community'];
const allowed = () => !!session.token && ROLES.includes(session.role);
let selected = null; // the company whose file is open: {id, name}

function show(view) {
  $('#rating-sheet').dataset.view = view;
  $('#rating-list-view').hidden = view !== 'list';
  $('#rating-file-view').hidden = view !== 'file';
  $('#rating-title').textContent = view === 'file' ? '信用档案' : '红黑榜（物业服务企业考核评价）';
}

function clearSelection() {
  selected = null;
  clearHighlight();
  $('#rating-file').replaceChildren();
  emit('rating:closed');
}

export function closeRating() {
  const sheet = $('#rating-sheet');
  if (!sheet || sheet.hidden) return;
  clearSelection();
  sheet.hidden = true;
  document.body.classList.remove('rating-open');
  if (map) map.invalidateSize();
}

export async function openRating() {
  if (!allowed()) return;
  $('#rating-sheet').hidden = false;
  document.body.classList.add('rating-open');
  show('list');
  await loadList($('#rating-period').value);
}

async function openCompany({ id, name }) {
  selected = { id, name };
  show('file');
  const note = $('#rating-file-note');
  note.textContent = '';
  try {
    const collection = await highlightCompany(id, $('#rating-sheet'));
    if (!selected || selected.id !== id) return;
    await showFile({ id, name }, collection);
  } catch (error) {
    note.textContent = `未能打开信用档案：${error.message}`;
  }
}

function sheet() {
  const select = el('select', { id: 'rating-period', 'aria-label': '评价期间' },
    periodChoices(beijingToday()).map((choice) => el('option', { value: choice.value }, choice.label)));
  select.addEventListener('change', () => { clearSelection(); loadList(select.value); });
  return el('section', { id: 'rating-sheet', hidden: true, 'aria-labelledby': 'rating-title' },
    el('header', {}, el('h3', { id: 'rating-title' }, '红黑榜'),
      el('button', { id: 'rating-close', type: 'button', 'aria-label': '关闭', onclick: closeRating }, '×')),
    el('div', { id: 'rating-list-view' },
      el('div', { class: 'desk-controls' }, el('label', {}, '评价期间', select),
        el('button', { id: 'rating-compute', type: 'button', hidden: true }, '计算并保存本期评价')),
      el('p', { id: 'rating-note', class: 'hint', role: 'status' }),
      el('div', { id: 'rating-list' })),
    el('div', { id: 'rating-file-view', hidden: true },
      el('div', { class: 'desk-controls' },
        el('button', { id: 'rating-back', type: 'button', onclick: () => { clearSelection(); show('list'); } },
          '← 返回红黑榜（清除地图标注）')),
      el('p', { id: 'rating-file-note', class: 'hint', role: 'status' }),
      el('div', { id: 'rating-file' })));
}

function entry() {
  return el('div', { id: 'rating-box' }, el('h4', {}, '红黑榜与信用档案'),
    el('p', { class: 'hint', id: 'rating-hint' }),
    el('button', { id: 'rating-open', type: 'button', onclick: openRating }, '打开红黑榜'));
}

function showEntry() {
  const ok = allowed();
  $('#rating-open').hidden = !ok;
  $('#rating-hint').textContent = ok
    ? (['street', 'community'].includes(session.role) ? '本辖区物业服务企业的考核得分、排名和信用档案；点企业名称在地图上标出其小区。'
      : '各物业服务企业的考核得分、排名和信用档案；点企业名称在地图上标出其小区。')
    : '规划人员、街道、社区和管理员登录后可查看红黑榜与信用档案。';
  const desk = $('#desk-rating-open');
  if (desk) desk.hidden = !ok;
  if (!ok) closeRating();
}

export function initRating() {
  const pane = document.querySelector('section[data-pane=planner]');
  if (!pane || $('#rating-box')) return;
  pane.append(entry());
  document.querySelector('main').append(sheet());
  const deskRow = document.querySelector('#desk-box .row');
  if (deskRow) deskRow.append(el('button', { id: 'desk-rating-open', type: 'button', onclick: openRating }, '红黑榜'));
  on('rating:open', openCompany);
  on('session:change', showEntry);
  on('session:start', showEntry);
  document.addEventListener('keydown', (event) => { if (event.key === 'Escape') closeRating(); });
  showEntry();
}
