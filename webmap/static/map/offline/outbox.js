/* The outbox: every change a person makes from the field (a note, a photo, a state change, a new report) goes
 * through `submit`, so that the offline queue (issue 16) has one door to keep. A request is
 *   {kind: 'note'|'photo'|'transition'|'report', method, path, body, files, ticketId, version, label}
 * where `body` is a plain object (sent as JSON, or as form fields when `files` is given), `files` is a list of
 * {field, blob, filename}, `version` the ticket's version the person saw and `label` a Chinese line saying what
 * it does ("受理工单 #12"). Answers {sent: true, data} once the server accepted it, or {queued: true} when there
 * is no network (navigator.onLine false, or the fetch failed without an answer) or older requests still wait:
 * the request is then kept in IndexedDB (store.js) and sent, in the order made, when the network returns (the
 * `online` event, and at start). Refusals with an answer (4xx) are thrown to the caller as `api()` throws them.
 *
 * Versions: a transition carries `version` in its body, so the server answers 409 when someone moved the ticket
 * meanwhile; the queued request then waits as a conflict for the person to decide (conflict.js): discard it, or
 * apply it again on the ticket's version now. A later queued transition of the same ticket made on the version
 * an earlier queued one moved from follows it to the version that one answered (the person's own chain of work
 * is no conflict). Notes and photos keep the version they were made on, but a note or a photo is appended to the
 * history and contradicts nobody, so the server takes it on a moved ticket as well: not a conflict. A new report
 * carries its `client_id` (made here if the caller gave none), so a report sent twice is stored once, and the
 * time it was made (`reported_at`), not the time the network returned.
 *
 * Events: `outbox:change` {waiting, conflicts, refused, offline} after every change of the queue, and
 * `outbox:conflict` {record, ticket} when a queued request met a 409. */
import { api, session } from '../api.js';
import { emit } from '../bus.js';
import { addRecord, allRecords, putRecord, removeRecord } from './store.js';

let flushing = null;

function encode(request) {
  if (!request.files || !request.files.length) return request.body;
  const form = new FormData();
  for (const [name, value] of Object.entries(request.body || {})) {
    if (value !== null && value !== undefined) form.append(name, value);
  }
  for (const file of request.files) form.append(file.field, file.blob, file.filename);
  return form;
}

/* No answer at all (offline, connection refused): `api()` throws fetch's TypeError, which has no status. */
const noAnswer = (error) => error.status === undefined;

/* An answer that says "later": the server or its database is away, too many requests, the sign-in expired. */
const later = (error) => noAnswer(error) || error.status >= 500 || error.status === 429 || error.status === 401;

async function send(request) {
  const data = await api(request.path, { method: request.method || 'POST', body: encode(request) });
  return { sent: true, data };
}

/* The request as it is kept and sent: a transition's version in its body, a report's idempotency key. */
function prepared(request) {
  const body = Object.assign({}, request.body || {});
  if (request.kind === 'transition' && request.version !== undefined && body.version === undefined) body.version = request.version;
  if (request.kind === 'report' && !body.client_id) body.client_id = crypto.randomUUID();
  if (request.kind === 'report' && !body.reported_at) body.reported_at = new Date().toISOString();
  return Object.assign({}, request, { body });
}

export async function records() {
  return (await allRecords()).filter((record) => !record.madeBy || record.madeBy === session.username);
}

/* Tells the page how many requests wait, are in conflict or were refused. */
export async function announce() {
  const list = await records();
  const count = (state) => list.filter((record) => record.state === state).length;
  const detail = { waiting: count('waiting'), conflicts: count('conflict'), refused: count('refused'), offline: !navigator.onLine };
  emit('outbox:change', detail);
  return detail;
}

async function enqueue(request) {
  await addRecord(Object.assign({}, request, {
    state: 'waiting', madeAt: new Date().toISOString(), madeBy: session.username,
  }));
  await announce();
  return { queued: true };
}

export async function submit(request) {
  const ready = prepared(request);
  const waiting = (await records()).some((record) => record.state === 'waiting');
  if (!navigator.onLine || waiting) {
    const answer = await enqueue(ready);
    if (navigator.onLine) flush();
    return answer;
  }
  try {
    return await send(ready);
  } catch (error) {
    if (!noAnswer(error)) throw error;
    return enqueue(ready);
  }
}

async function currentTicket(ticketId) {
  try { return await api(`/tickets/${ticketId}`); } catch (error) { return { id: ticketId, error: error.message }; }
}

/* Sends what waits, oldest first; stops at the first "later". Answers the counts afterwards. */
async function run() {
  const moved = new Map(); // ticket id -> {from, to}: versions the queue's own transitions moved
  const held = new Set(); // tickets with a conflict: their later requests wait behind it
  for (const record of await records()) {
    if (record.state === 'conflict') held.add(record.ticketId);
    if (record.state !== 'waiting' || (record.ticketId && held.has(record.ticketId))) continue;
    const step = moved.get(record.ticketId);
    if (record.kind === 'transition' && step && record.body.version === step.from) {
      record.body.version = step.to;
      record.version = step.to;
    }
    try {
      const { data } = await send(record);
      await removeRecord(record.seq);
      if (record.kind === 'transition' && data && data.version !== undefined) {
        moved.set(record.ticketId, { from: record.body.version, to: data.version });
      }
    } catch (error) {
      if (later(error)) break;
      if (error.status === 409 && record.ticketId) {
        record.state = 'conflict';
        record.current = await currentTicket(record.ticketId);
        held.add(record.ticketId);
      } else {
        record.state = 'refused';
      }
      record.reason = error.message;
      await putRecord(record);
      if (record.state === 'conflict') emit('outbox:conflict', { record, ticket: record.current });
    }
    await announce();
  }
  return announce();
}

/* Sends the queue now (once at a time); answers the counts when done. */
export function flush() {
  if (!flushing) flushing = run().finally(() => { flushing = null; });
  return flushing;
}

/* A conflict or refusal the person chose to drop. */
export async function discard(seq) {
  await removeRecord(seq);
  return announce();
}

/* A conflict the person chose to apply again on the ticket's version now. */
export async function applyAgain(record, version) {
  const body = Object.assign({}, record.body);
  if (record.kind === 'transition') body.version = version;
  await putRecord(Object.assign({}, record, { body, version, state: 'waiting', reason: null, current: null }));
  return flush();
}

/* Starts the queue: sends what waits now and whenever the network returns. */
export function initOutbox() {
  window.addEventListener('online', () => { flush(); });
  window.addEventListener('offline', () => { announce(); });
  if (navigator.onLine) flush(); else announce();
}

/* For the browser tests, through facade.js: submit, flush and the records, read-only. */
export const outboxView = Object.freeze({ submit, flush, records, announce });
