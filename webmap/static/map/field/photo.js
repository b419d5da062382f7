/* Photos on the phone: downscaled before upload (longest side 1600 px, JPEG, on a canvas), fetched with the
 * session's token for thumbnails, and shown full size in a viewer over the page. */
import { NETWORK_TEXT, reasonText, session } from '../api.js';
import { $, el } from '../dom.js';

export const MAX_SIDE = 1600;
const QUALITY = 0.85;

/* The photo as a JPEG whose longest side is at most MAX_SIDE: {blob, filename}. A file the browser cannot
 * decode is sent as it is (the server then says why it refuses it). */
export async function downscale(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch (error) {
    return { blob: file, filename: file.name || 'photo' };
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', QUALITY));
  const stem = (file.name || 'photo').replace(/\.[^.]*$/, '') || 'photo';
  return { blob: blob || file, filename: `${stem}.jpg` };
}

/* The files of a file input, downscaled, as the outbox's `files` under one form field name. */
export async function photoFiles(input, field) {
  const files = [];
  for (const file of input.files || []) files.push({ field, ...(await downscale(file)) });
  return files;
}

/* An object URL of an image the API serves to the signed-in caller. */
export async function photoUrl(path) {
  let response;
  try {
    response = await fetch(path, { headers: session.token ? { Authorization: `Bearer ${session.token}` } : {} });
  } catch (error) {
    throw new Error(NETWORK_TEXT);
  }
  if (!response.ok) throw new Error(reasonText(response.status, null));
  return URL.createObjectURL(await response.blob());
}

export function openViewer(url, caption) {
  $('#photo-viewer-img').src = url;
  $('#photo-viewer-caption').textContent = caption || '';
  $('#photo-viewer').hidden = false;
}

/* Thumbnails of a ticket's photos; a tap shows one full size. */
export function gallery(ticket) {
  const photos = ticket.photos || [];
  if (!photos.length) return el('p', { class: 'hint', id: 'photo-gallery', 'data-count': 0 }, '暂无照片');
  const box = el('div', { class: 'gallery', id: 'photo-gallery', 'data-count': photos.length });
  for (const photo of photos) {
    const image = el('img', { class: 'thumb', alt: `照片 ${photo.filename || ''}`, 'data-photo': photo.id });
    const button = el('button', { type: 'button', class: 'thumb-button', 'aria-label': '查看大图' }, image);
    box.append(button);
    photoUrl(`/tickets/${ticket.id}/photos/${photo.id}`).then((url) => {
      image.src = url;
      image.dataset.loaded = '1';
      button.addEventListener('click', () => openViewer(url, photo.filename));
    }).catch((error) => { button.replaceChildren(el('span', { class: 'muted' }, error.message)); });
  }
  return box;
}

export function initViewer() {
  const close = () => { $('#photo-viewer').hidden = true; };
  $('#photo-viewer-close').addEventListener('click', close);
  $('#photo-viewer').addEventListener('click', (event) => { if (event.target.id === 'photo-viewer') close(); });
  document.addEventListener('keydown', (event) => { if (event.key === 'Escape') close(); });
}
