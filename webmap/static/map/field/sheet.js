/* The phone layout (widths up to 700 px): the map fills the screen under a compact top bar, the sidebar and the
 * side panel become bottom sheets (collapsed, half, full) that never hide the whole map, and the account menu
 * opens from a button in the top bar. On wider screens none of this applies and the page is as it was.
 *
 * Sheet states are the sheets' data-sheet attributes, styled in map.css; a tap on a sheet's handle cycles them.
 * The panel is at most 60% of the height, so an opened ticket always leaves the map in sight. */
import { emit, on } from '../bus.js';
import { $ } from '../dom.js';
import { map } from '../state.js';

const PHONE = window.matchMedia('(max-width: 700px)');
export const isPhone = () => PHONE.matches;

const CYCLE = { collapsed: 'half', half: 'full', full: 'collapsed' };

export function setSheet(node, state) {
  node.dataset.sheet = state;
  if (map) map.invalidateSize({ pan: false });
}

/* The height of the map the sheets leave in sight at the bottom of the screen, in pixels (0 on wide screens). */
export function coveredHeight() {
  if (!isPhone()) return 0;
  const panel = $('#panel');
  const sheet = panel.hidden ? $('#sidebar') : panel;
  return sheet.getBoundingClientRect().height;
}

/* Moves the map so that a point shows in the middle of the part of the map the sheets leave in sight: above the
 * bottom sheet on a phone, left of the panel lying over the map on a tablet. */
export function showAbove(latlng, zoom) {
  map.setView(latlng, zoom, { animate: false });
  const covered = coveredHeight();
  if (covered) { map.panBy([0, covered / 2], { animate: false }); return; }
  const panel = $('#panel');
  if (panel.hidden) return;
  const box = map.getContainer().getBoundingClientRect();
  const overlap = box.right - panel.getBoundingClientRect().left;
  if (overlap > 0 && overlap < box.width) map.panBy([overlap / 2, 0], { animate: false });
}

/* The account menu's button says what a tap does: 登录 opens the sign-in form, 收起 folds it away, 账户 opens
 * the signed-in user's menu (sign-out). */
function setAccountMenu(open) {
  const toggle = $('#account-toggle');
  const signedOut = !$('#login-form').hidden;
  $('#topbar').classList.toggle('account-open', open);
  toggle.setAttribute('aria-expanded', String(open));
  toggle.textContent = signedOut ? (open ? '收起' : '登录') : '账户';
}

function initAccountMenu() {
  const toggle = $('#account-toggle');
  toggle.addEventListener('click', () => {
    const open = !$('#topbar').classList.contains('account-open');
    setAccountMenu(open);
    if (open && !$('#login-form').hidden) $('#login-user').focus();
  });
  on('session:change', () => setAccountMenu(false));
  document.addEventListener('keydown', (event) => { if (event.key === 'Escape') setAccountMenu(false); });
}

function initSheets() {
  const sidebar = $('#sidebar');
  const panel = $('#panel');
  setSheet(sidebar, 'collapsed');
  $('#sidebar-handle').addEventListener('click', () => setSheet(sidebar, CYCLE[sidebar.dataset.sheet] || 'half'));
  // a tab chosen on a collapsed sheet opens it
  sidebar.querySelectorAll('.tabs button').forEach((button) => button.addEventListener('click', () => {
    if (sidebar.dataset.sheet === 'collapsed') setSheet(sidebar, 'half');
  }));
  $('#panel-handle').addEventListener('click', () => {
    setSheet(panel, panel.dataset.sheet === 'full' ? 'half' : 'full');
  });
  // the panel is shown and hidden by panel.js: follow its hidden attribute
  new MutationObserver(() => {
    document.body.classList.toggle('panel-open', !panel.hidden);
    if (panel.hidden) emit('panel:closed');
    else if (!panel.dataset.sheet || panel.dataset.sheet === 'collapsed') setSheet(panel, 'half');
  }).observe(panel, { attributes: true, attributeFilter: ['hidden'] });
  PHONE.addEventListener('change', () => map && map.invalidateSize());
}

export function initPhoneLayout() {
  initAccountMenu();
  initSheets();
  // On a phone the page is first of all the grid worker's: signed out, it opens on the sign-in form (收起 folds
  // it away for a visitor who only wants the map).
  setAccountMenu(!$('#login-form').hidden && PHONE.matches);
}
