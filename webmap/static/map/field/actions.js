/* A note or a photo on a ticket without changing its state (the API's comments and photos), from the ticket's
 * details. Every write goes through the outbox (offline/outbox.js), which may send it now or queue it. */
import { session, STATUS_TEXTS } from '../api.js';
import { emit } from '../bus.js';
import { el } from '../dom.js';
import { submit } from '../offline/outbox.js';
import { photoFiles } from './photo.js';

const WRITERS = ['admin', 'street', 'community', 'grid_worker', 'property_company'];

/* A refused photo's reason: the server's own in Chinese, else what a 400 means for a photo. */
export function photoRefusal(error) {
  return error.status === 400 && error.message === STATUS_TEXTS[400]
    ? '照片须为 JPEG、PNG 或 WebP 格式的图片，且不超过 10 MB' : error.message;
}

/* Whether the outbox sent the request now (else it is queued until the network returns). */
export const wasSent = (result) => !result || result.sent === true;

/* What the outbox answered, in words: sent, or kept to be sent when the network returns. */
export function sentText(result, done) {
  return wasSent(result) ? done : '已保存到待发送队列，联网后自动发送';
}

/* Sends one addition to ticket `t` through the outbox and reports it in `result`: `done` when sent (the ticket is
 * reopened with `refresh`), queued when offline, or `failed(error)`; `clear` empties the form once it is taken. */
async function sendAddition(t, refresh, request, { result, done, failed, clear }) {
  try {
    const answer = await submit({ method: 'POST', ticketId: t.id, version: t.version, ...request });
    result.textContent = sentText(answer, done);
    result.dataset.done = '1';
    clear();
    emit('ticket:changed', { ids: [t.id] });
    if (wasSent(answer)) refresh(t.id);
  } catch (error) {
    result.textContent = failed(error);
  }
}

function noteForm(t, refresh) {
  const text = el('textarea', { id: 'note-text', placeholder: '现场情况、沟通记录等（不改变工单状态）', maxlength: 4000 });
  const result = el('p', { id: 'note-result', class: 'hint', role: 'status' });
  const form = el('form', { id: 'note-form', class: 'field-form' }, el('label', { for: 'note-text' }, '备注'), text,
    el('button', { type: 'submit', id: 'note-submit' }, '添加备注'), result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const note = text.value.trim();
    if (!note) { result.textContent = '请先填写备注内容'; return; }
    form.querySelector('button').disabled = true;
    await sendAddition(t, refresh, {
      kind: 'note', path: `/tickets/${t.id}/comments`, body: { note }, label: `工单 #${t.id} 备注`,
    }, { result, done: '备注已添加', failed: (error) => `添加失败：${error.message}`, clear: () => { text.value = ''; } });
    form.querySelector('button').disabled = false;
  });
  return form;
}

function photoForm(t, refresh) {
  const input = el('input', { id: 'photo-input', type: 'file', accept: 'image/*', capture: 'environment' });
  const caption = el('input', { id: 'photo-note', type: 'text', placeholder: '照片说明（可选）', maxlength: 200 });
  const result = el('p', { id: 'photo-result', class: 'hint', role: 'status' });
  const form = el('form', { id: 'photo-form', class: 'field-form' }, el('label', { for: 'photo-input' }, '拍照或选择照片'),
    input, caption, el('button', { type: 'submit', id: 'photo-submit' }, '上传照片'), result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!input.files.length) { result.textContent = '请先拍照或选择一张照片'; return; }
    form.querySelector('button').disabled = true;
    result.textContent = '正在压缩照片…';
    const failed = (error) => `上传失败：${photoRefusal(error)}`;
    try {
      const files = await photoFiles(input, 'file');
      const body = caption.value.trim() ? { note: caption.value.trim() } : {};
      await sendAddition(t, refresh, {
        kind: 'photo', path: `/tickets/${t.id}/photos`, body, files, label: `工单 #${t.id} 照片`,
      }, { result, done: '照片已上传', failed, clear: () => { input.value = ''; } });
    } catch (error) {
      result.textContent = failed(error); // the photo could not be read or shrunk
    }
    form.querySelector('button').disabled = false;
  });
  return form;
}

/* The note and photo forms for a ticket the signed-in person may write on; `refresh(id)` reopens it. */
export function ticketActions(t, refresh) {
  if (!session.token || !WRITERS.includes(session.role)) return null;
  return el('div', { class: 'field-actions' }, el('h4', {}, '补充记录（不改变状态）'), noteForm(t, refresh),
    photoForm(t, refresh));
}
