/* How the desk writes what a person reads: times in Beijing time (labelled), rates as percentages, and the
 * holder of a ticket by name. Shared by the desk and by the ticket lists of the work tab. */
import { layers } from '../layers/registry.js';

export const BEIJING = '北京时间';

const MINUTE = new Intl.DateTimeFormat('zh-CN', {
  timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
  hourCycle: 'h23',
});

function parts(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return null;
  return Object.fromEntries(MINUTE.formatToParts(date).map((p) => [p.type, p.value]));
}

/* "2026-03-01 08:30" in Beijing time, whatever offset the API wrote; '' for no time. */
export function beijingMinute(iso) {
  const p = parts(iso);
  return p ? `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}` : '';
}

/* "2026-03-01", the Beijing date of a time. */
export function beijingDate(iso) {
  const p = parts(iso);
  return p ? `${p.year}-${p.month}-${p.day}` : '';
}

/* A time with its label, for lines that stand alone. */
export const beijingLabelled = (iso) => (iso ? `${beijingMinute(iso)}（${BEIJING}）` : '—');

/* Today in Beijing as YYYY-MM-DD, shifted by `days`. */
export function beijingToday(days = 0) {
  return beijingDate(new Date(Date.now() + days * 86400000).toISOString());
}

/* The day after a YYYY-MM-DD date (an inclusive end made exclusive for the API). */
export function nextDay(day) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}

export const percent = (value) => (value === null || value === undefined ? '—' : `${(Number(value) * 100).toFixed(1)}%`);

/* Property companies' names by id, as the pages that fetched them remember them. */
const companyNames = new Map();

export function rememberCompanies(list) {
  for (const company of list || []) companyNames.set(String(company.id), company.name);
}

function communityName(code) {
  let name = null;
  if (layers.community) {
    layers.community.group.eachLayer((layer) => {
      if (layer.feature && layer.feature.properties.code === code) name = layer.feature.properties.name;
    });
  }
  return name || code;
}

/* Who holds a ticket now: its organisation (and the named person when there is one). */
export function holderText(t) {
  const kind = t.assignee_kind;
  let text;
  if (!kind) text = '未派遣';
  else if (kind === 'street_department') text = `街道 · ${t.department || t.assignee_code}`;
  else if (kind === 'utility') text = `专业单位 · ${t.department || t.assignee_code}`;
  else if (kind === 'community') text = `社区 · ${communityName(t.assignee_code)}`;
  else if (kind === 'property_company') text = `物业 · ${companyNames.get(String(t.assignee_code)) || `企业 ${t.assignee_code}`}`;
  else if (kind === 'user') text = `人员 · ${t.assignee_code}`;
  else text = t.assignee_code || '—';
  if (t.assignee_user_id !== null && t.assignee_user_id !== undefined && kind !== 'user') {
    text += `（指定人员 ${t.assignee_name || t.assignee_user_id}）`;
  }
  return text;
}
