/* Area assignment for street offices: draw an area or pick a grid on the map, list its tickets waiting to be
 * dispatched (every active filter applies), and assign them all at once to a street department, a community or
 * a property company, after a confirmation that names the count and the target (desk/assign.js). */
import { api } from '../api.js';
import { on } from '../bus.js';
import { askConfirmation, initAssign, loadAssignees, setSelection } from '../desk/assign.js';
import { nextDay } from '../desk/format.js';
import { $ } from '../dom.js';
import { categoryName, STATE_NAMES } from '../names.js';
import { filters, map } from '../state.js';
import { dropTool, useTool } from '../tools.js';
import { openTicket, ticketLine, ticketProps, ticketsOf } from './tickets.js';

const DEFAULT_STATES = ['reported', 'registered', 'dispatched'];
const AREA_STYLE = { color: '#c0392b', weight: 2, fillOpacity: 0.08 };

let drawn = null; // {vertices, line} while drawing; {polygon} once drawn or picked
let areaTickets = null;
let areaQuery = null; // {query, body}: the area as list parameters and as assignment fields
let areaLabel = null;

export const drawnArea = () => drawn;
export const areaTicketList = () => areaTickets;

const drawTool = { name: 'draw', noDoubleClickZoom: true, click: addVertex };
const pickTool = { name: 'pick', click: pickGrid };

function startDrawing() {
  clearArea();
  drawn = { vertices: [], line: L.polyline([], { color: '#c0392b', dashArray: '5 4' }).addTo(map) };
  useTool(drawTool);
  $('#finish-area').hidden = false;
  $('#clear-area').hidden = false;
  $('#area-summary').textContent = '在地图上依次点击范围的各个顶点，然后点“完成范围”。';
}

function addVertex(latlng) {
  drawn.vertices.push(latlng);
  drawn.line.setLatLngs(drawn.vertices);
}

function finishDrawing() {
  if (!drawn || drawn.vertices.length < 3) { $('#area-summary').textContent = '范围至少需要三个顶点。'; return; }
  dropTool();
  drawn.line.remove();
  drawn.polygon = L.polygon(drawn.vertices, Object.assign({ interactive: false }, AREA_STYLE)).addTo(map);
  $('#finish-area').hidden = true;
  const ring = drawn.vertices.map((p) => [Number(p.lng.toFixed(6)), Number(p.lat.toFixed(6))]);
  ring.push(ring[0]);
  const polygon = { type: 'Polygon', coordinates: [ring] };
  loadAreaTickets({ query: { polygon: JSON.stringify(polygon) }, body: { polygon } }, '所画范围');
}

function startPicking() {
  clearArea();
  useTool(pickTool);
  $('#area-summary').textContent = '在地图上点击要派单的网格。';
}

async function pickGrid(latlng) {
  dropTool();
  try {
    const answer = await api(`/responsibility?lon=${latlng.lng.toFixed(6)}&lat=${latlng.lat.toFixed(6)}`);
    if (!answer.grid) throw new Error('此处不在任何网格内');
    const collection = await api(`/layers/grid.geojson?parent=${answer.community.code}`);
    const feature = collection.features.find((f) => f.properties.code === answer.grid.code);
    clearArea();
    drawn = { polygon: L.geoJSON(feature, { style: AREA_STYLE, interactive: false }).addTo(map) };
    $('#clear-area').hidden = false;
    loadAreaTickets({ query: { grid: answer.grid.code }, body: { grids: [answer.grid.code] } }, answer.grid.name);
  } catch (error) {
    $('#area-summary').textContent = error.message;
  }
}

function clearArea() {
  if (drawn) { if (drawn.line) drawn.line.remove(); if (drawn.polygon) drawn.polygon.remove(); }
  drawn = null;
  dropTool();
  $('#finish-area').hidden = true;
  $('#clear-area').hidden = true;
  $('#area-tickets').replaceChildren();
  $('#area-summary').textContent = '';
  $('#assign-result').textContent = '';
  $('#assign-button').disabled = true;
  areaQuery = null;
  areaTickets = null;
  setSelection(null);
}

/* The active complaint filters (category, state, reported dates, overdue) as ticket query parameters and as
 * the assignment body's fields, so the list and the assignment select the same tickets. */
function filterSelection() {
  const states = filters.state ? [filters.state] : DEFAULT_STATES;
  const query = { state: states.join(',') };
  const body = { states };
  if (filters.category.length) { query.category = filters.category.join(','); body.categories = [...filters.category]; }
  if (filters.from) { query.reported_from = `${filters.from}T00:00:00+08:00`; body.reported_from = query.reported_from; }
  if (filters.to) { query.reported_to = `${nextDay(filters.to)}T00:00:00+08:00`; body.reported_to = query.reported_to; }
  if (filters.overdue) { query.overdue = 'true'; body.overdue = true; }
  return { query, body };
}

function filterText() {
  const parts = [];
  if (filters.category.length) parts.push(`类别 ${filters.category.map(categoryName).join('、')}`);
  if (filters.state) parts.push(`状态 ${STATE_NAMES[filters.state] || filters.state}`);
  if (filters.from || filters.to) parts.push(`上报 ${filters.from || '…'} 至 ${filters.to || '…'}`);
  if (filters.overdue) parts.push('仅超期');
  return parts.length ? `（已按筛选：${parts.join('，')}）` : '';
}

async function loadAreaTickets(area, label) {
  const { query, body } = filterSelection();
  const params = new URLSearchParams(Object.assign({ limit: '1000' }, query, area.query));
  areaQuery = area;
  areaLabel = label || areaLabel;
  try {
    const tickets = ticketsOf(await api(`/tickets?${params}`)).map(ticketProps);
    areaTickets = tickets;
    $('#area-summary').textContent = `${areaLabel || '所画范围'}内待派工单 ${tickets.length} 件${filterText()}。`;
    $('#area-summary').dataset.count = tickets.length;
    $('#area-tickets').replaceChildren(...tickets.slice(0, 200).map((t) => ticketLine(t, () => openTicket(t.id))));
    $('#assign-button').disabled = tickets.length === 0;
    await loadAssignees(tickets);
    setSelection(tickets, Object.assign({}, body, area.body), areaLabel || '所画范围');
  } catch (error) {
    $('#area-summary').textContent = `查询失败：${error.message}`;
  }
}

export function initArea() {
  $('#draw-area').addEventListener('click', startDrawing);
  $('#pick-grid').addEventListener('click', startPicking);
  $('#finish-area').addEventListener('click', finishDrawing);
  $('#clear-area').addEventListener('click', clearArea);
  $('#assign-button').addEventListener('click', askConfirmation);
  initAssign();
  on('area:assigned', () => { if (areaQuery) loadAreaTickets(areaQuery); });
  on('filters:change', () => { if (areaQuery) loadAreaTickets(areaQuery); });
}
