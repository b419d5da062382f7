/* Unit names and building numbers as labels. Labels are DOM tooltips (Chinese text renders best there); a move
 * adds and removes only the ones that enter or leave the view. */
import { map, visible } from '../state.js';

const MAX_LABELS = 400;

/* Where a layer's labels go, worked out once per load. */
function labelItemsOf(entry) {
  if (!entry.labelItems) {
    const items = [];
    entry.group.eachLayer((layer) => {
      if (layer._labelText) {
        items.push({ key: String(layer.feature.id ?? L.stamp(layer)), latlng: layer.getBounds().getCenter(),
          text: layer._labelText });
      }
    });
    entry.labelItems = items;
  }
  return entry.labelItems;
}

export function updateLabels(entry) {
  const def = entry.def;
  const zoom = map.getZoom();
  const shown = entry.shownLabels || (entry.shownLabels = new Map());
  const wanted = new Map();
  if (def.label && visible.has(entry.name) && zoom >= def.label[0] && zoom <= def.label[1]) {
    const view = map.getBounds().pad(0.1);
    for (const item of labelItemsOf(entry)) {
      if (wanted.size >= MAX_LABELS) break;
      if (view.contains(item.latlng)) wanted.set(item.key, item);
    }
  }
  for (const [key, tooltip] of shown) {
    const item = wanted.get(key);
    if (!item || item.text !== tooltip._labelText || !item.latlng.equals(tooltip.getLatLng())) {
      entry.labels.removeLayer(tooltip);
      shown.delete(key);
    }
  }
  for (const [key, item] of wanted) {
    if (shown.has(key)) continue;
    const tooltip = L.tooltip({ permanent: true, direction: 'center', className: `label ${entry.name}`,
      interactive: false }).setLatLng(item.latlng).setContent(document.createTextNode(item.text));
    tooltip._labelText = item.text;
    entry.labels.addLayer(tooltip);
    shown.set(key, tooltip);
  }
}
