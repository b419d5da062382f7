/* The dispatch model's suggestion (智能派单建议) where staff decide — the review queue and a ticket's dispatch form:
 * the model's three most likely categories and responsible parties with their confidence in percent, the words
 * (n-grams) behind the first category marked in the complaint's text and listed, "模型不确定，请人工选择" when it
 * abstains, and the model version. A suggested item is one click into the form when the form has that field
 * (`pickCategory`, `pickParty`). The suggestion kept with the complaint at intake comes first; a complaint that has
 * none gets the newest model's for its text. With no model trained (204) or none allowed, nothing shows. */
import { api, has } from '../api.js';
import { el } from '../dom.js';

export const ABSTAIN_TEXT = '模型不确定，请人工选择';

const percent = (confidence) => `${Math.round(100 * confidence)}%`;

/* The suggestion of complaint `id` to show (kept at intake, else the newest model's for its text now), or null
 * when there is none: no model trained yet (204), or no such route or complaint for this person. */
export async function fetchSuggestion(id) {
  if (!id || !has('GET', '/complaints/{complaint_id}/suggestion')) return null;
  try {
    return await api(`/complaints/${id}/suggestion?or_newest=true`);
  } catch (error) {
    return null;
  }
}

/* `text` as nodes with each occurrence of `words` in a <mark>; [nodes, the words found]. */
export function marked(text, words) {
  const source = text || '';
  const lower = source.toLowerCase();
  const covered = new Array(source.length).fill(false);
  const found = [];
  for (const word of words || []) {
    const needle = word.toLowerCase();
    if (!needle) continue;
    let at = lower.indexOf(needle);
    if (at >= 0) found.push(word);
    while (at >= 0) {
      for (let i = at; i < at + needle.length; i += 1) covered[i] = true;
      at = lower.indexOf(needle, at + needle.length);
    }
  }
  const nodes = [];
  let start = 0;
  for (let i = 1; i <= source.length; i += 1) {
    if (i === source.length || covered[i] !== covered[start]) {
      const piece = source.slice(start, i);
      nodes.push(covered[start] ? el('mark', { class: 'suggestion-word' }, piece) : piece);
      start = i;
    }
  }
  return [nodes, found];
}

function choiceList(kind, items, confident, pick) {
  return el('div', { class: 'suggestion-part', 'data-suggestion': kind },
    el('h5', {}, kind === 'category' ? '问题类别' : '责任主体'),
    confident ? null : el('p', { class: 'suggestion-abstain hint warn' }, ABSTAIN_TEXT),
    el('ol', { class: 'suggestion-choices' }, ...items.map((item, rank) => {
      const value = kind === 'category' ? item.code : item.party;
      return el('li', { 'data-value': value, 'data-confidence': item.confidence, class: rank === 0 ? 'first' : '' },
        el('span', { class: 'suggestion-name' }, item.name_zh || value), ' ',
        el('span', { class: 'suggestion-confidence' }, percent(item.confidence)),
        pick ? el('button', { type: 'button', class: 'suggestion-pick', 'data-pick': value,
          onclick: (event) => {
            event.stopPropagation();
            event.currentTarget.textContent = pick(value, item) === false ? '本工单无此单位' : '已选用';
          } }, '选用') : null);
    })));
}

/* The suggestion box of `s` for a complaint with `text`: `markIn`, an element that shows the text and gets its
 * words marked (else the box shows the text itself), `pickCategory(code)` and `pickParty(party)` when the form
 * has such a field. */
export function suggestionBox(s, text, { markIn = null, pickCategory = null, pickParty = null } = {}) {
  const words = s.category_words || [];
  const [nodes, found] = marked(text, words);
  if (markIn) markIn.replaceChildren(...nodes);
  const partyConfident = s.party_confident ?? (s.parties.length > 0 && s.parties[0].confidence >= s.min_confidence);
  const box = el('section', { class: 'suggestion', 'data-model-version': s.model_version,
    'data-confident': s.confident ? 'true' : 'false', onclick: (event) => event.stopPropagation() },
  el('h4', {}, '派单建议', el('span', { class: 'muted suggestion-version' },
    `（派单模型第 ${s.model_version} 版${s.kept ? '，受理时给出' : ''}）`)),
  s.categories.length ? choiceList('category', s.categories, s.confident, pickCategory) : null,
  s.parties.length ? choiceList('party', s.parties, partyConfident, pickParty) : null,
  words.length ? el('p', { class: 'suggestion-words' }, `首选类别的依据词：`,
    ...words.map((word) => el('span', { class: found.includes(word) ? 'suggestion-word found' : 'suggestion-word' }, word)))
    : null,
  markIn || !found.length ? null : el('p', { class: 'suggestion-text' }, ...nodes));
  return box;
}

/* A place holder that fills itself with the suggestion of complaint `id` once it arrives, and stays empty (hidden)
 * when there is none; the options as suggestionBox's. */
export function suggestionSection(id, text, options = {}) {
  const holder = el('div', { class: 'suggestion-holder', hidden: 'hidden' });
  fetchSuggestion(id).then((s) => {
    if (!s || !holder.isConnected) return;
    const markIn = typeof options.markIn === 'string' ? document.querySelector(options.markIn) : options.markIn;
    holder.replaceChildren(suggestionBox(s, text, Object.assign({}, options, { markIn })));
    holder.hidden = false;
  });
  return holder;
}
