/* "Who is responsible here": click anywhere (or find a place) and the panel lists the street office, community,
 * grid and its workers, the compound, the property company with its red/black standing, the owners' committee
 * and the party organisations. Contacts come only for signed-in staff (the API decides). */
import { api } from '../api.js';
import { emit } from '../bus.js';
import { el } from '../dom.js';
import { MODE_NAMES, PARTY_KINDS, STANDING } from '../names.js';
import { showPanel } from '../panel.js';
import { map } from '../state.js';
import { mayEdit } from '../work/registry-access.js';

let marker = null;
let place = null; // the point asked about, so an edit can ask again

function contactText(contact) {
  if (!contact) return null;
  return el('span', { class: 'contact' }, [contact.name, contact.phone].filter(Boolean).join(' '));
}

function workersOf(r) {
  if (!r.grid_workers.length) return el('span', { class: 'muted' }, '未配备');
  return el('div', {}, ...r.grid_workers.map((w) => el('div', { class: 'worker' },
    w.contact ? contactText(w.contact) : '网格员',
    w.is_party_member ? el('span', { class: 'badge party' }, '党员') : null,
    w.is_part_time ? ` 兼职（${w.property_company || '物业项目经理'}）` : ' 专职')));
}

function companyOf(company) {
  const [label, cls] = STANDING[company.standing] || [company.standing, ''];
  return [company.name, ' ', el('span', { class: `badge ${cls}`, 'data-standing': company.standing }, label),
    company.evaluation_period ? el('span', { class: 'muted' }, ` ${company.evaluation_period}`) : null,
    company.contact ? el('div', {}, contactText(company.contact)) : null];
}

function committeeOf(oc) {
  if (!oc) return el('span', { class: 'muted' }, '未成立');
  return el('span', {}, `${oc.member_count} 人，党员 ${oc.party_member_count} 人`,
    oc.chair ? el('div', {}, '主任 ', el('span', { class: 'contact' }, oc.chair.name)) : null);
}

function renderResponsibility(r) {
  const rows = [];
  const add = (term, ...value) => rows.push(el('dt', {}, term), el('dd', {}, ...value));
  if (r.district) add('区县', r.district.name);
  add('街道办事处', r.street.name, el('span', { class: 'muted' }, ` ${r.street.code}`));
  if (r.community) {
    add('社区', r.community.name,
      r.community.office_phone ? el('span', { class: 'contact' }, ` ☎ ${r.community.office_phone}`) : null);
  }
  if (r.grid) add('网格', r.grid.name, el('span', { class: 'muted' }, ` ${r.grid.code}`));
  if (r.grid) add('网格员', workersOf(r));
  if (r.micro_grid) add('微网格', r.micro_grid.name);
  if (r.compound) {
    const c = r.compound;
    add('小区', el('strong', {}, c.name), c.is_old_estate ? el('span', { class: 'badge' }, '老旧小区') : null,
      el('div', { class: 'muted' },
        `${MODE_NAMES[c.management_mode] || c.management_mode} · ${c.households} 户 · ${c.build_year} 年`),
      mayEdit(c.code) ? el('button', { type: 'button', class: 'registry-edit',
        'data-compound': c.code, onclick: () => emit('registry:edit', { code: c.code, latlng: place }) }, '编辑') : null);
  }
  if (r.building) {
    add('楼栋', `${r.building.number}号楼 · ${r.building.floors} 层 ${r.building.households} 户`,
      r.building.leader ? el('div', {}, '楼栋长 ', contactText(r.building.leader)) : null);
  }
  if (r.property_company) add('物业企业', ...companyOf(r.property_company));
  else if (r.compound) add('物业企业', el('span', { class: 'muted' }, '无'));
  if (r.compound) add('业主委员会', committeeOf(r.owners_committee));
  const parties = r.party_organisations.map((org) => el('div', { class: 'party' },
    el('span', { class: 'badge party' }, PARTY_KINDS[org.kind] || org.kind), ' ', org.name,
    org.secretary ? el('div', {}, '书记 ', contactText(org.secretary)) : null));
  add('党组织', parties.length ? el('div', {}, ...parties) : el('span', { class: 'muted' }, '无'));
  return el('div', { id: 'responsibility' },
    el('h3', {}, '这里谁负责'),
    el('dl', {}, ...rows),
    r.contacts_shown ? null : el('p', { class: 'hint' }, '联系方式仅对登录的工作人员显示。'));
}

/* Marks the place and shows who is responsible for it. */
export async function askResponsibility(latlng) {
  if (marker) marker.remove();
  place = latlng;
  marker = L.circleMarker(latlng, { radius: 7, color: '#8b1a1a', weight: 3, fillOpacity: 0.2 }).addTo(map);
  try {
    const answer = await api(`/responsibility?lon=${latlng.lng.toFixed(6)}&lat=${latlng.lat.toFixed(6)}`);
    showPanel(renderResponsibility(answer));
  } catch (error) {
    showPanel(el('h3', {}, '这里谁负责'),
      el('p', {}, error.status === 404 ? '此处不在任何街道的管辖范围内。' : error.message));
  }
}
