/* The outbox: every change a person makes from the field (a note, a photo, a state change, a new report) goes
 * through `submit`, so that the offline queue (issue 16) has one door to keep. A request is
 *   {kind: 'note'|'photo'|'transition'|'report', method, path, body, files, ticketId, version, label}
 * where `body` is a plain object (sent as JSON, or as form fields when `files` is given) and `files` is a list of
 * {field, blob, filename}. Answers {sent: true, data} once the server accepted it. */
import { api } from '../api.js';

function encode(request) {
  if (!request.files || !request.files.length) return request.body;
  const form = new FormData();
  for (const [name, value] of Object.entries(request.body || {})) form.append(name, value);
  for (const file of request.files) form.append(file.field, file.blob, file.filename);
  return form;
}

export async function submit(request) {
  const data = await api(request.path, { method: request.method || 'POST', body: encode(request) });
  return { sent: true, data };
}
