/* The outbox's IndexedDB store: one record a queued request, kept in the order it was made (an increasing key),
 * so the queue survives a reload and closing the app. Blobs (photos) are stored as they are.
 *
 * A record: {seq, kind, method, path, body, files: [{field, blob, filename}], ticketId, version, label,
 *            madeAt (ISO time), madeBy (username), state: 'waiting'|'conflict'|'refused', reason, current} */

const DB_NAME = 'gridgov-outbox';
const STORE = 'requests';
let opening = null;

function database() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'seq', autoIncrement: true });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => { opening = null; reject(request.error); };
    });
  }
  return opening;
}

/* Runs `work(store)` in one transaction and answers the value of the request it returns, once committed. */
async function within(mode, work) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const transaction = db.transaction(STORE, mode);
    const request = work(transaction.objectStore(STORE));
    let value;
    if (request) request.onsuccess = () => { value = request.result; };
    transaction.oncomplete = () => resolve(value);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}

/* Stores a new record; answers its key. */
export const addRecord = (record) => within('readwrite', (store) => store.add(record));

/* Every record, oldest first. */
export const allRecords = () => within('readonly', (store) => store.getAll());

/* Writes a changed record back. */
export const putRecord = (record) => within('readwrite', (store) => store.put(record));

/* Removes a record once the server took it, or the person discarded it. */
export const removeRecord = (seq) => within('readwrite', (store) => store.delete(seq));
