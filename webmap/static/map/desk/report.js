/* The street report from the browser: the street chosen by name, the report run as an HTTP job
 * (POST /reports/street, then GET /reports/jobs/{id} until it is done) with a progress line while the page stays
 * usable, then the PDF offered for download. */
import { api, session } from '../api.js';
import { $, el } from '../dom.js';
import { beijingToday } from './format.js';

const POLL_MS = 1000;
const STATES = { queued: '排队中', pending: '排队中', running: '生成中', done: '已完成', succeeded: '已完成',
  finished: '已完成', failed: '失败', error: '失败' };
let streets = null;
let polling = null;

/* The streets the signed-in person may report on, by name (a street office its own). */
async function loadStreets() {
  if (!streets) {
    const collection = await api('/layers/street.geojson');
    streets = collection.features.map((f) => f.properties).sort((a, b) => a.name.localeCompare(b.name, 'zh-CN'));
  }
  const scope = session.role === 'street' && session.me && session.me.scope ? session.me.scope : [];
  return streets.filter((p) => !scope.length || scope.some((code) => String(code).startsWith(p.code) || p.code.startsWith(code)));
}

export async function fillStreets() {
  try {
    const list = await loadStreets();
    $('#report-street').replaceChildren(...list.map((s) => el('option', { value: s.code }, s.name)));
    $('#report-start').disabled = !list.length;
  } catch (error) {
    $('#report-progress').textContent = `街道列表获取失败：${error.message}`;
  }
}

const jobId = (job) => job.id ?? job.job_id;
const stateOf = (job) => job.status || job.state;
const done = (job) => ['done', 'succeeded', 'finished'].includes(stateOf(job));
const failed = (job) => ['failed', 'error'].includes(stateOf(job));

/* GET /reports/jobs/{id}: state, fraction (0..1) and a Chinese progress line. */
function progressText(job) {
  const share = typeof job.fraction === 'number' ? Math.round(job.fraction * 100) : null;
  return [`报告${job.state_zh || STATES[stateOf(job)] || '生成中'}`, share === null ? '' : `${share}%`,
    job.progress_zh || ''].filter(Boolean).join(' · ');
}

function offerPdf(job) {
  const href = job.pdf || `/reports/jobs/${jobId(job)}/report.pdf`;
  const link = el('a', { id: 'report-download', class: 'button', href: '#', 'data-href': href }, '下载 PDF');
  link.addEventListener('click', (event) => { event.preventDefault(); download(href, job); });
  $('#report-result').replaceChildren(link);
}

/* The PDF is fetched with the session's token and saved from a blob (a plain link would carry no token). */
async function download(href, job) {
  try {
    const response = await fetch(href, { headers: session.token ? { Authorization: `Bearer ${session.token}` } : {} });
    if (!response.ok) throw new Error(`${response.status}`);
    const url = URL.createObjectURL(await response.blob());
    const save = el('a', { href: url, download: job.filename || `街道报告-${$('#report-street').selectedOptions[0].textContent}.pdf` });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (error) {
    $('#report-progress').textContent = `下载失败：${error.message}`;
  }
}

async function poll(id) {
  try {
    const job = await api(`/reports/jobs/${id}`);
    $('#report-progress').textContent = progressText(job);
    $('#report-progress').dataset.state = stateOf(job);
    if (done(job)) { offerPdf(job); finish(); return; }
    if (failed(job)) { $('#report-progress').textContent = `报告生成失败：${job.error_zh || job.error || job.message || ''}`; finish(); return; }
    polling = setTimeout(() => poll(id), POLL_MS);
  } catch (error) {
    $('#report-progress').textContent = `进度查询失败：${error.message}`;
    finish();
  }
}

function finish() {
  polling = null;
  $('#report-start').disabled = false;
}

async function start() {
  if (polling) return;
  const street = $('#report-street').value;
  if (!street) return;
  $('#report-start').disabled = true;
  $('#report-result').replaceChildren();
  $('#report-progress').textContent = '正在提交……';
  try {
    const body = { street };
    // the period as the API reads it: an inclusive date range, YYYY-MM-DD..YYYY-MM-DD
    const from = $('#report-from').value;
    const to = $('#report-to').value;
    if (from && to) body.period = `${from}..${to}`;
    const job = await api('/reports/street', { method: 'POST', body });
    $('#report-progress').textContent = progressText(job);
    if (done(job)) { offerPdf(job); finish(); return; }
    polling = setTimeout(() => poll(jobId(job)), POLL_MS);
  } catch (error) {
    $('#report-progress').textContent = error.status === 404 || error.status === 405
      ? '本部署尚未提供街道报告服务。' : `报告提交失败：${error.message}`;
    finish();
  }
}

export function initReport() {
  $('#report-box').replaceChildren(
    el('label', {}, '街道', el('select', { id: 'report-street' })),
    el('div', { class: 'row' },
      el('label', {}, '起始', el('input', { type: 'date', id: 'report-from', value: beijingToday(-364) })),
      el('label', {}, '截止（含）', el('input', { type: 'date', id: 'report-to', value: beijingToday() }))),
    el('button', { type: 'button', id: 'report-start', disabled: 'disabled' }, '生成街道报告'),
    el('p', { id: 'report-progress', class: 'hint', role: 'status' }),
    el('div', { id: 'report-result' }));
  $('#report-start').addEventListener('click', start);
}
