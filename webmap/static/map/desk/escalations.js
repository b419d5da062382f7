/* The escalations (吹哨) still waiting for their department's answer (报到), and the answer recorded once. */
import { api } from '../api.js';
import { emit } from '../bus.js';
import { $, el } from '../dom.js';
import { BEIJING, beijingMinute } from './format.js';

function answerForm(item) {
  const form = el('form', { class: 'answer-form' },
    el('textarea', { class: 'answer-text', placeholder: `${item.department}的答复（到场情况、处理结果）` }),
    el('button', { type: 'submit' }, '登记报到'), el('span', { class: 'hint answer-result' }));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api(`/supervision/escalations/${item.id}/answer`, { method: 'POST',
        body: { answer: form.querySelector('.answer-text').value } });
      emit('ticket:changed', { ids: [item.ticket_id] });
      loadEscalations();
    } catch (error) {
      form.querySelector('.answer-result').textContent = `登记失败：${error.message}`;
    }
  });
  return form;
}

export async function loadEscalations() {
  const box = $('#escalation-box');
  try {
    const items = await api('/supervision/escalations?unanswered=true&limit=100');
    box.replaceChildren(el('h4', {}, `待报到的吹哨（${items.length} 件）`),
      items.length ? el('ul', { class: 'list desk-list', id: 'escalation-list' }, ...items.map((item) => el('li',
        { 'data-escalation': item.id, 'data-ticket': item.ticket_id },
        el('div', {}, `工单 #${item.ticket_id} · 吹哨给 `, el('strong', {}, item.department),
          ` · ${beijingMinute(item.requested_at)}（${BEIJING}）`),
        item.reason ? el('div', { class: 'muted' }, `事由：${item.reason}`) : null,
        answerForm(item))))
        : el('p', { class: 'hint' }, '没有待报到的吹哨。'));
  } catch (error) {
    box.replaceChildren(el('p', { class: 'hint' }, `吹哨记录查询失败：${error.message}`));
  }
}

