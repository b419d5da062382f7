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

/* The addresses this page has sent a write to (POST, PATCH, ...). The browser's resource timings list them
 * beside the reads without their method, and the offline warm-up must not read them again. */
const written = new Set();
export const wasWritten = (url) => written.has(new URL(url, location.origin).href);

/* What a person reads for a refusal whose reason the server wrote in English (or not at all), by status. */
export const STATUS_TEXTS = {
  400: '输入有误，请检查后重试', 401: '登录已失效，请重新登录', 403: '您的角色无权执行此操作',
  404: '未找到，或不在您的工作范围内', 405: '本部署不支持此操作', 409: '内容已被他人更新，请刷新后重试',
  413: '文件太大，请压缩后重试', 415: '文件格式不受支持', 422: '输入有误，请检查必填项和格式后重试',
  429: '尝试次数过多，请稍后再试', 500: '服务器出错，请稍后重试', 502: '服务器暂时无法访问，请稍后重试',
  503: '服务暂时不可用（数据库连接中断），请稍后重试', 504: '服务器处理超时，请稍后重试',
};
export const NETWORK_TEXT = '网络连接失败，请检查网络后重试';
const HAN = /[\u3400-\u9fff]/;

/* The Chinese reason for a refusal: the server's own when it wrote Chinese, else the text of its status. */
export function reasonText(status, detail) {
  if (typeof detail === 'string' && HAN.test(detail)) return detail;
  return STATUS_TEXTS[status] || (status >= 500 ? STATUS_TEXTS[500] : `请求未被接受（${status}）`);
}

/* Fetches a path of the app; objects are sent as JSON, FormData as it is. Answers JSON (or text); a refusal
 * throws an Error whose message is the reason in Chinese (reasonText), whose .status is the HTTP status and
 * whose .detail is the server's own reason. A request that got no answer throws a TypeError with a Chinese
 * message and no .status (the outbox queues such requests); an aborted one throws the AbortError as it is. */
export async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  let body = options.body;
  if (body && !(body instanceof FormData) && typeof body !== 'string') {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(body);
  }
  const method = options.method || 'GET';
  if (method !== 'GET' && method !== 'HEAD') written.add(new URL(path, location.origin).href);
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal: options.signal });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    const offline = new TypeError(NETWORK_TEXT);
    offline.cause = error;
    throw offline;
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (error) { data = text; }
  if (!response.ok) {
    let detail = data && data.detail !== undefined ? data.detail : text;
    if (Array.isArray(detail)) detail = detail.map((item) => item.msg || JSON.stringify(item)).join('; ');
    if (typeof detail !== 'string') detail = JSON.stringify(detail);
    const error = new Error(reasonText(response.status, detail));
    error.status = response.status;
    error.detail = detail;
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
