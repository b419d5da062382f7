/* The legend's entries, declared by the layers that draw them from the same style objects they draw with, so
 * the legend cannot show a colour the map does not. panels/legend.js lists what is showing.
 *
 * A layer of layers/defs.js gives its entries as `legend(zoom)` in its definition and shows while it is switched
 * on from its minZoom; an overlay that is not such a layer (the heat map, the hotspots) declares itself here with
 * declareLegend({id, title, shown(), entries(zoom)}). An entry is {key, text, swatch}, made by the helpers below
 * from Leaflet path options (color, weight, dashArray, fillColor, fillOpacity, radius). */

const overlays = [];

export function declareLegend(source) {
  overlays.push(source);
}

export const legendOverlays = () => overlays;

/* An outline, as a boundary is drawn; `ground`, the colour it is drawn on when a light line needs it (the base
 * map's white roads on its grey city). */
export function lineEntry(key, style, text, ground = null) {
  return { key, text, swatch: { kind: 'line', color: style.color, weight: style.weight || 1,
    dash: Boolean(style.dashArray), ground } };
}

/* A filled area with its outline. */
export function areaEntry(key, style, text) {
  return { key, text, swatch: { kind: 'area', color: style.color, weight: style.stroke === false ? 0 : style.weight ?? 1,
    dash: Boolean(style.dashArray), fill: style.fill === false ? null : style.fillColor || style.color,
    fillOpacity: style.fill === false ? 0 : style.fillOpacity ?? 0.2 } };
}

/* A circle marker (party organisations, complaints). */
export function dotEntry(key, style, text) {
  return { key, text, swatch: { kind: 'dot', color: style.color, weight: style.weight ?? 1,
    fill: style.fillColor, fillOpacity: style.fillOpacity ?? 1, radius: style.radius || 6 } };
}

/* A colour ramp from low to high (the heat map, the complaint rate). */
export function rampEntry(key, colours, text) {
  return { key, text, swatch: { kind: 'ramp', colours } };
}
