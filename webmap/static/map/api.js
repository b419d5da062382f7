/* Talking to the app's own API: one request function with the session's bearer token, errors carrying the
 * server's reason, the routes this deployment offers, and the signed-in session kept for the browser tab. */

/* Who is signed in, kept in sessionStorage so a reload stays signed in. */
export const session = {
  token: sessionStorage.getItem('gridgov.token'),
  role: sessionStorage.getItem('gridgov.role'),
  username: sessionStorage.getItem('gridgov.username'),
  me: JSON.parse(sessionStorage.getItem('gridgov.me') || 'null'),
};

export function saveSession() {
  sessionStorage.setItem('gridgov.me', JSON.stringify(session.me));
  sessionStorage.setItem('gridgov.token', session.token);
  sessionStorage.setItem('gridgov.role', session.role);
  sessionStorage.setItem('gridgov.username', session.username);
}

export function clearSession() {
  session.token = null; session.role = null; session.username = null;
  for (const key of ['me', 'token', 'role', 'username']) sessionStorage.removeItem(`gridgov.${key}`);
}

/* The API routes the page's tools use ("GET /tickets", ...), as /map/config.json lists them: a deployment
 * without a feature area does not offer its tools. */
let routes = new Set();

export function setRoutes(list) { routes = new Set(list); }

export const has = (method, path) => routes.has(`${method} ${path}`);

/* Fetches a path of the app; objects are sent as JSON, FormData as it is. Answers JSON (or text); a refusal
 * throws an Error whose message is "status: the server's reason" and whose .status is the HTTP status. */
export async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  let body = options.body;
  if (body && !(body instanceof FormData) && typeof body !== 'string') {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(body);
  }
  const response = await fetch(path, { method: options.method || 'GET', headers, body, signal: options.signal });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (error) { data = text; }
  if (!response.ok) {
    let detail = data && data.detail !== undefined ? data.detail : text;
    if (Array.isArray(detail)) detail = detail.map((item) => item.msg || JSON.stringify(item)).join('; ');
    const error = new Error(`${response.status}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

/* Leaflet bounds as the API's bbox parameter, clamped to the world. */
export function bboxParam(bounds) {
  return [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()]
    .map((value, index) => Math.max(index % 2 ? -90 : -180, Math.min(index % 2 ? 90 : 180, value)).toFixed(6))
    .join(',');
}
