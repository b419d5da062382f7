/* Map tools: a click on the map inspects (a complaint, or who is responsible here) unless a work tool has
 * taken the map, such as drawing an area, picking a grid or placing a complaint. One tool at a time; a tool is
 * {name, click(latlng), noDoubleClickZoom?} and its name styles the cursor (.mode-<name>). */
import { map } from './state.js';

let active = null;

export const activeTool = () => active;

export function useTool(tool) {
  active = tool;
  const container = map.getContainer();
  container.classList.remove('mode-draw', 'mode-place', 'mode-pick');
  container.classList.add(`mode-${tool.name}`);
  if (tool.noDoubleClickZoom) map.doubleClickZoom.disable(); else map.doubleClickZoom.enable();
}

/* Back to inspecting. */
export function dropTool() {
  active = null;
  map.getContainer().classList.remove('mode-draw', 'mode-place', 'mode-pick');
  map.doubleClickZoom.enable();
}
