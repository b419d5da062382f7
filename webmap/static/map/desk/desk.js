/* The street office's desk (街道工作台) in the work tab: the rates, the overdue list with supervision, and the
 * street report, for street offices and the administrator. The parts talk through bus.js:
 *
 *   desk:open    the sheet shows a view; detail {view: 'rates' | 'overdue'}
 *   desk:drill   the tickets behind one figure are asked for; detail {rate, level, unit, name, from, to}
 */
import { has, session } from '../api.js';
import { on } from '../bus.js';
import { $ } from '../dom.js';
import { initDrill } from './drill.js';
import { initEvaluationForm } from './evaluation.js';
import { initProactive } from './proactive.js';
import { initRates } from './rates.js';
import { fillStreets, initReport } from './report.js';
import { closeSheet, initSheet, openSheet } from './sheet.js';
import { initSupervision } from './supervision.js';

const DESK_ROLES = ['street', 'admin'];

function showDesk() {
  const allowed = !!session.token && DESK_ROLES.includes(session.role);
  $('#desk-box').hidden = !allowed;
  $('#desk-proactive-open').hidden = !has('GET', '/analytics/monthly-problems');
  if (!allowed) closeSheet(); else fillStreets();
}

export function initDesk() {
  initSheet();
  initRates();
  initDrill();
  initSupervision();
  initReport();
  initEvaluationForm();
  initProactive();
  $('#desk-rates-open').addEventListener('click', () => openSheet('rates'));
  $('#desk-overdue-open').addEventListener('click', () => openSheet('overdue'));
  $('#desk-proactive-open').addEventListener('click', () => openSheet('proactive'));
  on('session:change', showDesk);
  on('session:start', showDesk);
  showDesk();
}
