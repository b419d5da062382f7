/* The grid worker's phone (issue 16): the phone layout with bottom sheets and the account menu, locate me, the
 * opened ticket marked on the map, the map fitted to the worker's own grids after sign-in, the report form and
 * the photo viewer. The parts live beside this file; they talk to the rest of the page through bus.js:
 *
 *   ticket:open     a ticket's details are shown; detail {id, place: [lat, lon] | null} (work/tickets.js)
 *   panel:closed    the side panel was closed (field/sheet.js)
 *   field:reported  a new issue was reported; detail is the server's answer
 */
import { api, has, session } from '../api.js';
import { on } from '../bus.js';
import { $ } from '../dom.js';
import { map } from '../state.js';
import { initLocate } from './locate.js';
import { initViewer } from './photo.js';
import { clearReportPin, openReport } from './report.js';
import { initPhoneLayout, isPhone, showAbove } from './sheet.js';

const REPORTING_ROLES = ['admin', 'street', 'community', 'grid_worker', 'property_company'];
let ticketPin = null;

function markTicket({ id, place }) {
  if (ticketPin) { ticketPin.remove(); ticketPin = null; }
  if (!place) return;
  ticketPin = L.marker(place, { title: `工单 #${id}`, keyboard: false,
    icon: L.divIcon({ className: 'ticket-pin', html: '<span></span>', iconSize: [30, 30], iconAnchor: [15, 30] }) })
    .addTo(map);
  ticketPin.getElement().dataset.ticket = id;
  showAbove(place, Math.max(map.getZoom(), 17));
}

/* After sign-in the map shows the signed-in person's own units (a grid worker's grids). */
async function fitOwnArea() {
  if (!session.token || session.role !== 'grid_worker' || !has('GET', '/field/me')) return;
  try {
    const me = await api('/field/me');
    if (!me.bbox) return;
    const [minx, miny, maxx, maxy] = me.bbox;
    map.fitBounds([[miny, minx], [maxy, maxx]], { animate: false, paddingTopLeft: [10, 10],
      paddingBottomRight: [10, 10 + (isPhone() ? $('#sidebar').getBoundingClientRect().height : 0)] });
    document.body.dataset.ownArea = me.units.map((u) => u.code).join(',');
  } catch (error) { /* the map stays where it is */ }
}

function showFieldTools() {
  const allowed = !!session.token && REPORTING_ROLES.includes(session.role) && has('POST', '/field/reports');
  $('#field-box').hidden = !allowed;
}

export function initField() {
  initPhoneLayout();
  initLocate();
  initViewer();
  on('ticket:open', markTicket);
  on('panel:closed', () => { markTicket({ place: null }); clearReportPin(); });
  on('session:change', ({ signedIn }) => { showFieldTools(); if (signedIn) fitOwnArea(); });
  on('session:start', showFieldTools);
  $('#field-report-open').addEventListener('click', openReport);
  showFieldTools();
}
