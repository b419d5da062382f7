/* Signing in and out in the top bar, and which work tools the signed-in role gets. */
import { api, clearSession, has, saveSession, session } from '../api.js';
import { emit } from '../bus.js';
import { $, status } from '../dom.js';
import { ROLE_NAMES } from '../names.js';
import { selectTab } from '../panels/tabs.js';

const ASSIGNING_ROLES = ['street', 'admin', 'community'];
const PLACING_ROLES = ['street', 'admin', 'community', 'grid_worker'];

/* Shows the account and the work tools that the role may use and the deployment offers. */
export function showAccount() {
  const signedIn = !!session.token;
  $('#login-form').hidden = signedIn;
  $('#whoami').hidden = !signedIn;
  $('#logout-button').hidden = !signedIn;
  $('#whoami').textContent = signedIn ? `${session.username}（${ROLE_NAMES[session.role] || session.role}）` : '';
  $('#work-tools').hidden = !signedIn;
  $('#work-login-hint').hidden = signedIn;
  $('#my-tickets-box').hidden = !(signedIn && has('GET', '/tickets'));
  $('#assign-box').hidden = !(signedIn && ASSIGNING_ROLES.includes(session.role) && has('POST', '/tickets/assign'));
  $('#review-box').hidden = !(signedIn && has('GET', '/complaints/review')
    && has('POST', '/complaints/{complaint_id}/placement') && PLACING_ROLES.includes(session.role));
}

async function login(event) {
  event.preventDefault();
  if (!has('POST', '/auth/login')) { status('本部署未启用登录服务。'); return; }
  try {
    const username = $('#login-user').value;
    const answer = await api('/auth/login', { method: 'POST',
      body: { username, password: $('#login-password').value } });
    Object.assign(session, { token: answer.access_token, role: answer.role, username });
    session.me = has('GET', '/auth/me') ? await api('/auth/me') : { role: session.role, scope: [] };
    saveSession();
    $('#login-password').value = '';
    status(`已登录：${session.username}`);
    showAccount();
    selectTab('work');
    emit('session:change', { signedIn: true });
    emit('session:start');
  } catch (error) {
    status(`登录失败：${error.message}`);
  }
}

async function logout() {
  if (has('POST', '/auth/logout')) {
    try { await api('/auth/logout', { method: 'POST' }); } catch (error) { /* the token may already be gone */ }
  }
  clearSession();
  showAccount();
  emit('session:change', { signedIn: false });
}

/* Shows the account; a session kept from before the reload opens the work tools at once. */
export function initSignin() {
  showAccount();
  if (session.token) emit('session:start');
  $('#login-form').addEventListener('submit', login);
  $('#logout-button').addEventListener('click', logout);
}
