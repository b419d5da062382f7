/* Small DOM helpers shared by every module: a query, an element builder and the status line in the top bar. */

export const $ = (selector) => document.querySelector(selector);

/* el('li', {class: 'x', onclick: f, 'data-id': 3}, 'text', child, [more]) builds an element; attributes that are
 * null, undefined or false are left out, and so are such children. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/* The one-line status in the top bar (empty to clear it). */
export function status(message) {
  $('#status').textContent = message || '';
}

/* "2026-03-01T08:30:00+08:00" as "2026-03-01 08:30", as the API wrote it. */
export const minuteText = (iso) => (iso || '').slice(0, 16).replace('T', ' ');
