/* The complaint filters (category, state, dates, overdue only): they act on the complaint points, the heat map
 * and the hotspots, and the shareable link keeps them. */
import { api } from '../api.js';
import { emit } from '../bus.js';
import { $, el } from '../dom.js';
import { setCategories, STATE_NAMES } from '../names.js';
import { clearFilters, filters, heatOn, visible } from '../state.js';
import { showLayer } from './layer-list.js';

function apply() {
  filters.category = [...$('#filter-category').selectedOptions].map((option) => option.value);
  filters.state = $('#filter-state').value;
  filters.from = $('#filter-from').value;
  filters.to = $('#filter-to').value;
  filters.overdue = $('#filter-overdue').checked;
  if (!visible.has('complaint') && !heatOn()) showLayer('complaint');
  emit('filters:change', { applied: true });
}

function clear() {
  clearFilters();
  [...$('#filter-category').options].forEach((option) => { option.selected = false; });
  $('#filter-state').value = ''; $('#filter-from').value = ''; $('#filter-to').value = '';
  $('#filter-overdue').checked = false;
  emit('filters:change', { applied: false });
}

/* Fills the controls with the categories and the filters read from the link, then listens to them. */
export async function buildFilters() {
  const categories = await api('/map/categories.json');
  setCategories(categories);
  $('#filter-category').replaceChildren(...categories.map((c) => el('option', { value: c.code,
    selected: filters.category.includes(c.code) ? 'selected' : null }, `${c.name_zh}（${c.major_class}）`)));
  $('#filter-state').append(...Object.entries(STATE_NAMES).map(([value, name]) => el('option', { value }, name)));
  $('#filter-state').value = filters.state;
  $('#filter-from').value = filters.from;
  $('#filter-to').value = filters.to;
  $('#filter-overdue').checked = filters.overdue;
  $('#filter-apply').addEventListener('click', apply);
  $('#filter-clear').addEventListener('click', clear);
}
