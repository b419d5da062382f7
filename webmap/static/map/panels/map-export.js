/* The offline map to hand on, from the planner tab: a street or a district chosen by name, then
 * GET /reports/map.html fetched with the session's token and saved as one HTML file that opens without a network
 * (planners and administrators any area, a street office its own street). */
import { api, session } from '../api.js';
import { on } from '../bus.js';
import { $, el } from '../dom.js';

const MAKERS = new Set(['admin', 'planner', 'street']);
let areas = null;

async function loadAreas() {
  if (!areas) {
    const [districts, streets] = await Promise.all([api('/layers/district.geojson'), api('/layers/street.geojson')]);
    const byName = (a, b) => a.name.localeCompare(b.name, 'zh-CN');
    areas = [
      ...streets.features.map((f) => ({ level: 'street', ...f.properties })).sort(byName),
      ...districts.features.map((f) => ({ level: 'district', ...f.properties })).sort(byName),
    ];
  }
  const scope = session.role === 'street' && session.me && session.me.scope ? session.me.scope.map(String) : null;
  return scope ? areas.filter((a) => a.level === 'street' && scope.includes(a.code)) : areas;
}

async function fill() {
  const box = $('#map-export-box');
  box.hidden = !MAKERS.has(session.role);
  if (box.hidden) return;
  try {
    const list = await loadAreas();
    $('#map-export-area').replaceChildren(...list.map((a) => el('option', { value: `${a.level}:${a.code}` },
      `${a.level === 'street' ? '街道' : '区县'} · ${a.name}`)));
    $('#map-export-start').disabled = !list.length;
  } catch (error) {
    $('#map-export-note').textContent = `区域列表获取失败：${error.message}`;
  }
}

/* A plain link would carry no token: the file is fetched, then saved from a blob under the server's name. */
async function download() {
  const [level, code] = $('#map-export-area').value.split(':');
  const note = $('#map-export-note');
  $('#map-export-start').disabled = true;
  note.textContent = '正在生成离线地图……';
  try {
    const response = await fetch(`/reports/map.html?${level}=${encodeURIComponent(code)}`,
      { headers: session.token ? { Authorization: `Bearer ${session.token}` } : {} });
    if (!response.ok) {
      const answer = await response.json().catch(() => ({}));
      throw new Error(answer.detail || `${response.status}`);
    }
    const name = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') || '');
    const url = URL.createObjectURL(await response.blob());
    const save = el('a', { href: url, download: name ? name[1] : `map-${code}.html` });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    note.textContent = '离线地图已下载：用浏览器直接打开该文件即可，无需联网。';
  } catch (error) {
    note.textContent = `离线地图生成失败：${error.message}`;
  } finally {
    $('#map-export-start').disabled = false;
  }
}

export function initMapExport() {
  $('#map-export-start').addEventListener('click', download);
  on('session:change', fill);
  on('session:start', fill);
  fill();
}
