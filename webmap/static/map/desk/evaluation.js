/* The evaluation's inputs from the desk (考核评价录入): a street office rates a property company serving its
 * street for a half-year (POST /evaluation/ratings) and records a residents' satisfaction survey of a compound
 * (POST /evaluation/surveys). Companies and compounds are picked by name from the ones the caller rates and
 * surveys (GET /evaluation/companies, scoped by the API), never typed as ids or codes. The server checks scope
 * and values and its Chinese reason is shown as it is. */
import { api, session } from '../api.js';
import { on } from '../bus.js';
import { $, el } from '../dom.js';
import { beijingToday } from './format.js';

const RATER_ROLES = ['street', 'community', 'admin'];

function halfYear(day) {
  const [year, month] = day.split('-').map(Number);
  return `${year}H${month <= 6 ? 1 : 2}`;
}

function field(label, input) {
  return el('label', {}, label, input);
}

async function send(path, body, line) {
  line.textContent = '提交中…';
  try {
    await api(path, { method: 'POST', body });
    line.textContent = '已保存';
  } catch (error) {
    line.textContent = `未保存：${error.message}`;
  }
}

function ratingForm() {
  const company = el('select', { id: 'eval-rating-company', required: true, 'aria-label': '物业服务企业' },
    el('option', { value: '' }, '加载中…'));
  const period = el('input', { id: 'eval-rating-period', value: halfYear(beijingToday()), size: '7' });
  const score = el('input', { id: 'eval-rating-score', type: 'number', min: '0', max: '100', step: '0.1' });
  const line = el('p', { id: 'eval-rating-result', class: 'hint' });
  const submit = el('button', { id: 'eval-rating-submit', type: 'button', onclick: () => {
    if (!company.value) { line.textContent = '未保存：请先选择物业服务企业'; return; }
    send('/evaluation/ratings', { company_id: Number(company.value), period: period.value.trim(),
      score: Number(score.value) }, line);
  } }, '提交评分');
  return el('div', { id: 'eval-rating' }, el('h5', {}, '企业评分（半年）'), field('物业服务企业', company),
    field('评价期间', period), field('得分', score), submit, line);
}

function surveyForm() {
  const compound = el('select', { id: 'eval-survey-compound', required: true, 'aria-label': '小区' },
    el('option', { value: '' }, '加载中…'));
  const day = el('input', { id: 'eval-survey-day', type: 'date', value: beijingToday() });
  const sample = el('input', { id: 'eval-survey-sample', type: 'number', min: '1', step: '1' });
  const score = el('input', { id: 'eval-survey-score', type: 'number', min: '0', max: '100', step: '0.1' });
  const line = el('p', { id: 'eval-survey-result', class: 'hint' });
  const submit = el('button', { id: 'eval-survey-submit', type: 'button', onclick: () => {
    if (!compound.value) { line.textContent = '未保存：请先选择小区'; return; }
    send('/evaluation/surveys', { compound_code: compound.value, surveyed_on: day.value,
      sample_size: Number(sample.value), score: Number(score.value) }, line);
  } }, '提交调查');
  return el('div', { id: 'eval-survey' }, el('h5', {}, '居民满意度调查'), field('小区', compound),
    field('调查日期', day), field('样本量', sample), field('满意度得分', score), submit, line);
}

/* The pickers' choices: companies by name; compounds by community, each with the company managing it. */
function fillPickers(companies) {
  const company = $('#eval-rating-company');
  const compound = $('#eval-survey-compound');
  company.replaceChildren(el('option', { value: '' }, companies.length ? '请选择企业' : '辖区内没有物业服务企业'),
    ...companies.map((c) => el('option', { value: c.id }, c.name)));
  const byCommunity = new Map();
  for (const c of companies) {
    for (const place of c.compounds) {
      const name = place.community_name || place.community_code;
      if (!byCommunity.has(name)) byCommunity.set(name, []);
      byCommunity.get(name).push(el('option', { value: place.code }, `${place.name}（${c.name}）`));
    }
  }
  const groups = [...byCommunity.entries()].sort((a, b) => a[0].localeCompare(b[0], 'zh-CN'));
  compound.replaceChildren(el('option', { value: '' }, groups.length ? '请选择小区' : '辖区内没有有物业的小区'),
    ...groups.map(([name, options]) => el('optgroup', { label: name }, options)));
}

async function loadPickers() {
  if (!session.token || !RATER_ROLES.includes(session.role) || !$('#eval-box')) return;
  try {
    fillPickers(await api('/evaluation/companies'));
  } catch (error) {
    for (const id of ['#eval-rating-company', '#eval-survey-compound']) {
      $(id).replaceChildren(el('option', { value: '' }, `无法加载：${error.message}`));
    }
  }
}

export function initEvaluationForm() {
  const box = $('#desk-box');
  if (!box || $('#eval-box')) return;
  box.append(el('div', { id: 'eval-box' }, el('h4', {}, '考核评价录入'), ratingForm(), surveyForm()));
  on('session:start', loadPickers);
  loadPickers();
}
