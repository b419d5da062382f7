/* The evaluation's inputs from the desk (考核评价录入): a street office rates a property company serving its
 * street for a half-year (POST /evaluation/ratings) and records a residents' satisfaction survey of a compound
 * (POST /evaluation/surveys). The form is built here under the desk; the server checks scope and values and its
 * Chinese reason is shown as it is. */
import { api } from '../api.js';
import { $, el } from '../dom.js';
import { beijingToday } from './format.js';

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
  const company = el('input', { id: 'eval-rating-company', type: 'number', min: '1', required: true });
  const period = el('input', { id: 'eval-rating-period', value: halfYear(beijingToday()), size: '7' });
  const score = el('input', { id: 'eval-rating-score', type: 'number', min: '0', max: '100', step: '0.1' });
  const line = el('p', { id: 'eval-rating-result', class: 'hint' });
  const submit = el('button', { id: 'eval-rating-submit', type: 'button', onclick: () => send('/evaluation/ratings', {
    company_id: Number(company.value), period: period.value.trim(), score: Number(score.value),
  }, line) }, '提交评分');
  return el('div', { id: 'eval-rating' }, el('h5', {}, '企业评分（半年）'), field('企业编号', company),
    field('评价期间', period), field('得分', score), submit, line);
}

function surveyForm() {
  const compound = el('input', { id: 'eval-survey-compound', placeholder: '小区编码' });
  const day = el('input', { id: 'eval-survey-day', type: 'date', value: beijingToday() });
  const sample = el('input', { id: 'eval-survey-sample', type: 'number', min: '1', step: '1' });
  const score = el('input', { id: 'eval-survey-score', type: 'number', min: '0', max: '100', step: '0.1' });
  const line = el('p', { id: 'eval-survey-result', class: 'hint' });
  const submit = el('button', { id: 'eval-survey-submit', type: 'button', onclick: () => send('/evaluation/surveys', {
    compound_code: compound.value.trim(), surveyed_on: day.value, sample_size: Number(sample.value),
    score: Number(score.value),
  }, line) }, '提交调查');
  return el('div', { id: 'eval-survey' }, el('h5', {}, '居民满意度调查'), field('小区', compound),
    field('调查日期', day), field('样本量', sample), field('满意度得分', score), submit, line);
}

export function initEvaluationForm() {
  const box = $('#desk-box');
  if (!box || $('#eval-box')) return;
  box.append(el('div', { id: 'eval-box' }, el('h4', {}, '考核评价录入'), ratingForm(), surveyForm()));
}
