/* Area assignment for street offices: draw an area or pick a grid on the map, list its tickets waiting to be
 * dispatched, and assign them all at once to a street department, a community or a property company. */
import { api } from '../api.js';
import { emit } from '../bus.js';
import { $, el, status } from '../dom.js';
import { layers } from '../layers/registry.js';
import { STANDING } from '../names.js';
import { map } from '../state.js';
import { dropTool, useTool } from '../tools.js';
import { openTicket, ticketLine, ticketProps, ticketsOf } from './tickets.js';

const DEPARTMENTS = ['综合行政执法中队', '城市管理办公室', '平安建设办公室'];
const AREA_STYLE = { color: '#c0392b', weight: 2, fillOpacity: 0.08 };

let drawn = null; // {vertices, line} while drawing; {polygon} once drawn or picked
let areaTickets = null;
let areaQuery = null;

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
  loadAreaTickets({ polygon: JSON.stringify({ type: 'Polygon', coordinates: [ring] }) });
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
    loadAreaTickets({ grid: answer.grid.code }, answer.grid.name);
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
}

async function loadAreaTickets(area, label) {
  const params = new URLSearchParams(Object.assign({ state: 'reported,registered,dispatched', limit: '1000' }, area));
  try {
    const tickets = ticketsOf(await api(`/tickets?${params}`)).map(ticketProps);
    areaTickets = tickets;
    areaQuery = area;
    $('#area-summary').textContent = `${label || '所画范围'}内待派工单 ${tickets.length} 件。`;
    $('#area-tickets').replaceChildren(...tickets.slice(0, 200).map((t) => ticketLine(t, () => openTicket(t.id))));
    $('#assign-button').disabled = tickets.length === 0;
    await loadAssignees(tickets);
  } catch (error) {
    $('#area-summary').textContent = `查询失败：${error.message}`;
  }
}

const distinct = (tickets, key) => [...new Set(tickets.map((t) => t[key]).filter(Boolean))];

/* Who may receive the tickets of the area: the street's departments, the communities and the property
 * companies the tickets lie in (the tickets service checks each choice against every ticket). */
async function loadAssignees(tickets) {
  const options = [];
  for (const street of distinct(tickets, 'street_code')) {
    for (const department of DEPARTMENTS) {
      options.push({ kind: 'street_department', code: street, department, name: `街道 · ${department}` });
    }
  }
  const communityNames = {};
  layers.community.group.eachLayer((layer) => { communityNames[layer.feature.properties.code] = layer.feature.properties.name; });
  for (const code of distinct(tickets, 'community_code')) {
    options.push({ kind: 'community', code, name: `社区 · ${communityNames[code] || code}` });
  }
  const companyIds = [...new Set(tickets.map((t) => t.property_company_id).filter((id) => id !== null && id !== undefined))];
  if (companyIds.length) {
    try {
      for (const company of await api(`/map/property-companies.json?ids=${companyIds.slice(0, 500).join(',')}`)) {
        const standing = STANDING[company.standing] ? STANDING[company.standing][0] : company.standing;
        options.push({ kind: 'property_company', code: String(company.id), name: `物业 · ${company.name}（${standing}）` });
      }
    } catch (error) { status(error.message); }
  }
  $('#assignee').replaceChildren(...options.map((o) => el('option',
    { value: JSON.stringify({ kind: o.kind, code: o.code, department: o.department }) }, o.name)));
}

async function assignArea() {
  if (!areaTickets || !areaTickets.length) return;
  if (!$('#assignee').value) { $('#area-summary').textContent = '请选择派给谁。'; return; }
  const assignee = JSON.parse($('#assignee').value);
  try {
    const answer = await api('/tickets/assign', { method: 'POST', body: {
      ticket_ids: areaTickets.map((t) => t.id),
      versions: Object.fromEntries(areaTickets.map((t) => [t.id, t.version])),
      assignee, note: '地图区域批量派单',
    } });
    const count = answer.assigned;
    $('#assign-result').textContent = `已派单 ${count} 件。`;
    $('#assign-result').dataset.assigned = count;
    emit('ticket:changed', { ids: areaTickets.map((t) => t.id) });
    loadAreaTickets(areaQuery);
  } catch (error) {
    $('#assign-result').textContent = error.status === 409 ? '工单已被他人修改，请刷新后重试。' : `派单失败：${error.message}`;
  }
}

export function initArea() {
  $('#draw-area').addEventListener('click', startDrawing);
  $('#pick-grid').addEventListener('click', startPicking);
  $('#finish-area').addEventListener('click', finishDrawing);
  $('#clear-area').addEventListener('click', clearArea);
  $('#assign-button').addEventListener('click', assignArea);
}
