/* Reporting a new issue from the field (上报): a category found by searching, a description, photos from the
 * camera, the place from the GPS or a tap on the map with its address from the layers (GET /field/place), sent
 * through the outbox to POST /field/reports with an id made here, so a retried submission is stored once. */
import { api } from '../api.js';
import { emit } from '../bus.js';
import { $, el } from '../dom.js';
import { submit } from '../offline/outbox.js';
import { showPanel } from '../panel.js';
import { map } from '../state.js';
import { dropTool, useTool } from '../tools.js';
import { photoRefusal, sentText } from './actions.js';
import { locate, showPosition } from './locate.js';
import { photoFiles } from './photo.js';
import { askSimilar, similarBox } from './similar.js';

let categories = null;
let current = null; // the form being filled: {clientId, place}
let pin = null;

/* The form's values the likely duplicates are asked for (field/similar.js). */
function refreshSimilar(now = false) {
  if (!current) return;
  askSimilar($('#field-similar'), { lon: current.place && current.place.lon, lat: current.place && current.place.lat,
    text: $('#field-report-text').value.trim(), category: $('#field-report-category').value }, joinTicket, { now });
}

/* 加入此工单: send the report joined to an open ticket it repeats. */
function joinTicket(id) {
  current.joinTicketId = id;
  send(null);
}

/* A random UUID (crypto.randomUUID needs a secure context; the fallback is the same version 4 layout). */
export function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function fillCategories(query) {
  const select = $('#field-report-category');
  const words = query.trim().toLowerCase();
  const shown = (categories || []).filter((c) => !words
    || `${c.name_zh} ${c.major_class} ${c.name} ${c.code}`.toLowerCase().includes(words));
  const chosen = select.value;
  select.replaceChildren(...shown.map((c) => el('option', { value: c.code }, `${c.name_zh}（${c.major_class}）`)));
  if (shown.some((c) => c.code === chosen)) select.value = chosen;
  else if (shown.length) select.value = shown[0].code;
  $('#field-report-category-count').textContent = `${shown.length} 个类别`;
}

async function setPlace(lat, lon, how) {
  current.place = { lat, lon, how };
  if (pin) pin.remove();
  pin = L.marker([lat, lon], { title: '上报位置', icon: L.divIcon({ className: 'report-pin', iconSize: [22, 22] }) })
    .addTo(map);
  const line = $('#field-report-place');
  line.dataset.lat = lat.toFixed(6);
  line.dataset.lon = lon.toFixed(6);
  line.textContent = `${how}：${lat.toFixed(6)}, ${lon.toFixed(6)}，正在查询地址…`;
  try {
    const place = await api(`/field/place?lon=${lon.toFixed(7)}&lat=${lat.toFixed(7)}`);
    current.place.address = place.address;
    $('#field-report-address').value = place.address || '';
    line.textContent = `${how}：${place.address || '未知地址'}${place.grid ? `（${place.grid}）` : ''}`;
    line.classList.toggle('warn', !place.in_scope);
    if (!place.in_scope) line.textContent += ' — 此处不在您负责的范围内，无法上报';
    line.dataset.inScope = place.in_scope ? '1' : '0';
    refreshSimilar(true);
  } catch (error) {
    line.textContent = `${how}：${lat.toFixed(6)}, ${lon.toFixed(6)}（${error.message}）`;
    line.dataset.inScope = '0';
  }
}

async function useGps() {
  const line = $('#field-report-place');
  line.textContent = '正在定位…';
  try {
    const position = await locate();
    showPosition(position);
    await setPlace(position.lat, position.lon, 'GPS 定位');
  } catch (error) {
    line.textContent = error.message;
  }
}

function pickOnMap() {
  $('#field-report-place').textContent = '请在地图上点选问题所在位置';
  useTool({ name: 'place', click: (latlng) => { dropTool(); setPlace(latlng.lat, latlng.lng, '地图点选'); } });
}

async function send(event) {
  if (event) { event.preventDefault(); current.joinTicketId = null; }
  const result = $('#field-report-result');
  const code = $('#field-report-category').value;
  if (!code) { result.textContent = '请选择问题类别'; return; }
  if (!current.place) { result.textContent = '请先定位，或在地图上点选问题所在位置'; return; }
  const button = $('#field-report-submit');
  button.disabled = true;
  result.textContent = '正在提交…';
  try {
    const files = await photoFiles($('#field-report-photos'), 'photos');
    const body = { client_id: current.clientId, category_code: code, description: $('#field-report-text').value.trim(),
      lon: Number(current.place.lon.toFixed(7)), lat: Number(current.place.lat.toFixed(7)),
      address: $('#field-report-address').value.trim(), reported_at: new Date().toISOString() };
    if (current.joinTicketId) body.join_ticket_id = current.joinTicketId;
    const answer = await submit({ kind: 'report', method: 'POST', path: '/field/reports', body, files,
      label: `上报：${$('#field-report-category').selectedOptions[0].textContent}` });
    const data = answer && answer.data;
    result.textContent = sentText(answer, data && data.ticket_id
      ? `${data.message || '上报成功'}：工单 #${data.ticket_id}` : '上报成功');
    result.dataset.ticket = data && data.ticket_id ? data.ticket_id : '';
    result.dataset.joined = data && data.joined_ticket_id ? data.joined_ticket_id : '';
    result.dataset.done = '1';
    emit('ticket:changed', { ids: data ? [data.ticket_id, data.joined_ticket_id].filter(Boolean) : [] });
    emit('field:reported', data || {});
    current = { clientId: newClientId(), place: current.place }; // a new form keeps the place
  } catch (error) {
    result.textContent = `上报失败：${photoRefusal(error)}`;
    current.joinTicketId = null;
  } finally {
    button.disabled = false;
  }
}

/* The report form in the panel. */
export async function openReport() {
  current = { clientId: newClientId(), place: null };
  showPanel(el('form', { id: 'field-report-form', class: 'field-form', onsubmit: send },
    el('h3', {}, '上报问题'),
    el('label', { for: 'field-report-category-search' }, '问题类别'),
    el('input', { id: 'field-report-category-search', type: 'search', placeholder: '搜索类别，如 路灯、漏水、垃圾',
      autocomplete: 'off', oninput: (e) => { fillCategories(e.target.value); refreshSimilar(); } }),
    el('select', { id: 'field-report-category', size: 5, 'aria-label': '问题类别', onchange: () => refreshSimilar() }),
    el('p', { id: 'field-report-category-count', class: 'hint' }),
    el('label', { for: 'field-report-text' }, '问题描述'),
    el('textarea', { id: 'field-report-text', placeholder: '发现了什么问题、在哪个位置', maxlength: 4000,
      oninput: () => refreshSimilar() }),
    el('label', { for: 'field-report-photos' }, '现场照片（可多张）'),
    el('input', { id: 'field-report-photos', type: 'file', accept: 'image/*', capture: 'environment', multiple: 'multiple' }),
    el('label', {}, '位置'),
    el('div', { class: 'row' },
      el('button', { type: 'button', id: 'field-report-use-gps', onclick: useGps }, '使用当前位置'),
      el('button', { type: 'button', id: 'field-report-pick', onclick: pickOnMap }, '在地图上点选')),
    el('p', { id: 'field-report-place', class: 'hint', role: 'status' }, '尚未选择位置'),
    el('label', { for: 'field-report-address' }, '地址（按位置自动填写，可修改）'),
    el('input', { id: 'field-report-address', type: 'text', maxlength: 300 }),
    similarBox(),
    el('button', { type: 'submit', id: 'field-report-submit', class: 'primary' }, '提交上报'),
    el('p', { id: 'field-report-result', class: 'hint', role: 'status' })));
  try {
    if (!categories) categories = await api('/map/categories.json');
    // what was typed while the list was loading still filters it
    fillCategories($('#field-report-category-search').value);
  } catch (error) {
    $('#field-report-category-count').textContent = `类别加载失败：${error.message}`;
  }
}

export function clearReportPin() {
  if (pin) { pin.remove(); pin = null; }
}
