/* Locate me (定位): a map control that moves the map to the phone's position (navigator.geolocation), marks it,
 * and says in Chinese why when the position cannot be had (permission refused, no fix, timeout). The report form
 * uses `locate()` for the place of a new issue. */
import { status } from '../dom.js';
import { map } from '../state.js';
import { showAbove } from './sheet.js';

const REASONS = {
  1: '无法定位：您拒绝了位置权限。请在浏览器或系统设置中允许本站使用位置信息，或在地图上点选位置。',
  2: '无法定位：暂时取不到位置（请到开阔处、打开 GPS 后重试，或在地图上点选位置）。',
  3: '定位超时，请重试，或在地图上点选位置。',
};

let mark = null;

/* The phone's position as {lat, lon, accuracy}; rejects with an Error whose message is the Chinese reason. */
export function locate() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) { reject(new Error('此浏览器不支持定位，请在地图上点选位置。')); return; }
    navigator.geolocation.getCurrentPosition(
      (position) => resolve({ lat: position.coords.latitude, lon: position.coords.longitude,
        accuracy: position.coords.accuracy }),
      (error) => reject(new Error(REASONS[error.code] || REASONS[2])),
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
  });
}

/* Marks the position on the map and moves there. */
export function showPosition(place) {
  const latlng = [place.lat, place.lon];
  if (mark) mark.remove();
  mark = L.circleMarker(latlng, { radius: 8, color: '#fff', weight: 3, fillColor: '#1a73e8', fillOpacity: 1,
    className: 'my-position', interactive: false }).addTo(map);
  showAbove(latlng, Math.max(map.getZoom(), 17));
}

async function locateMe() {
  const button = document.querySelector('#locate-me');
  button.classList.add('busy');
  try {
    const place = await locate();
    showPosition(place);
    status(`已定位（精度约 ${Math.round(place.accuracy || 0)} 米）`);
  } catch (error) {
    status(error.message);
  } finally {
    button.classList.remove('busy');
  }
}

export function initLocate() {
  const Control = L.Control.extend({
    onAdd() {
      const box = L.DomUtil.create('div', 'leaflet-bar locate-control');
      const button = L.DomUtil.create('a', '', box);
      button.id = 'locate-me';
      button.href = '#';
      button.title = '定位到我的位置';
      button.setAttribute('role', 'button');
      button.setAttribute('aria-label', '定位到我的位置');
      button.textContent = '◎';
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.on(button, 'click', (event) => { L.DomEvent.preventDefault(event); locateMe(); });
      return box;
    },
  });
  new Control({ position: 'topright' }).addTo(map);
}
