/* A company's compounds outlined on the map (红黑榜 → 信用档案): drawn in their own pane above the boundaries in
 * a colour no layer uses, the map framing them in the part the sheet leaves free; clearing the selection removes
 * them. The shapes are the API's (GET /analytics/companies/{id}/compounds.geojson). */
import { api } from '../api.js';
import { map } from '../state.js';

export const HIGHLIGHT_COLOUR = '#d100d1';
const PANE = 'rating-highlight';

let group = null; // the drawn L.GeoJSON, or null
let shown = { companyId: null, codes: [] };
let renderer = null; // one SVG renderer in the pane, kept between selections
let generation = 0; // a newer selection (or a clear) wins over a fetch still under way

function svgRenderer() {
  if (!renderer) {
    map.createPane(PANE).style.zIndex = 440; // above the boundaries (400), below the complaints (450)
    map.getPane(PANE).style.pointerEvents = 'none';
    renderer = L.svg({ pane: PANE });
  }
  return renderer;
}

/* What is highlighted now: {companyId, codes} (the facade shows it to the browser tests). */
export const highlighted = () => ({ companyId: shown.companyId, codes: shown.codes.slice() });

export function clearHighlight() {
  generation += 1;
  if (group) map.removeLayer(group);
  group = null;
  shown = { companyId: null, codes: [] };
}

/* Padding that keeps the framed compounds out from under the sheet: the sheet's overlap with the map on the
 * side it covers (the left on a wide screen, the bottom on a phone). */
function framePadding(sheet) {
  const mapBox = map.getContainer().getBoundingClientRect();
  const box = sheet && !sheet.hidden ? sheet.getBoundingClientRect() : null;
  const topLeft = [24, 24];
  const bottomRight = [24, 24];
  if (box && box.width && box.height) {
    const coversWidth = box.left <= mapBox.left + 4 && box.right >= mapBox.right - 4;
    if (coversWidth) bottomRight[1] += Math.max(0, mapBox.bottom - box.top);
    else topLeft[0] += Math.max(0, box.right - mapBox.left);
  }
  const free = [mapBox.width - topLeft[0] - bottomRight[0], mapBox.height - topLeft[1] - bottomRight[1]];
  if (free[0] < 80 || free[1] < 80) return { paddingTopLeft: [24, 24], paddingBottomRight: [24, 24] };
  return { paddingTopLeft: topLeft, paddingBottomRight: bottomRight };
}

/* Outlines the company's current compounds and frames them; answers the collection drawn. */
export async function highlightCompany(companyId, sheet) {
  clearHighlight();
  const mine = generation;
  const collection = await api(`/analytics/companies/${companyId}/compounds.geojson`);
  if (mine !== generation) return collection;
  group = L.geoJSON(collection, {
    pane: PANE, interactive: false, renderer: svgRenderer(),
    style: { color: HIGHLIGHT_COLOUR, weight: 4, opacity: 0.95, fillColor: HIGHLIGHT_COLOUR, fillOpacity: 0.18,
      className: 'rating-highlight' },
  }).addTo(map);
  shown = { companyId, codes: collection.features.map((f) => f.properties.code) };
  const bounds = group.getBounds();
  if (bounds.isValid()) map.fitBounds(bounds, { ...framePadding(sheet), maxZoom: 17 });
  return collection;
}
