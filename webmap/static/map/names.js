/* Every name and colour a person reads on the map, in one place: management modes, ticket states, red/black
 * standing, party organisations, roles, ticket actions, search kinds and complaint categories. */

export const MODE_COLOURS = {
  professional: '#1e8449', community_led: '#2e86c1', entrusted: '#f39c12', self_managed: '#8e44ad', none: '#c0392b',
};
export const MODE_NAMES = {
  professional: '专业化物业', community_led: '社区领办', entrusted: '社区代管', self_managed: '居民自管', none: '无物业',
};
export const STATE_NAMES = {
  reported: '已上报', registered: '已立案', rejected: '不予立案', dispatched: '已派遣', in_progress: '处置中',
  handled: '已处置', closed: '已结案', merged: '已合并',
};
export const STATE_COLOURS = {
  reported: '#7f8c8d', registered: '#5d6d7e', dispatched: '#e67e22', in_progress: '#f1c40f', handled: '#3498db',
  closed: '#27ae60', rejected: '#aab7b8', merged: '#aab7b8',
};
export const OVERDUE_COLOUR = '#c0392b';
/* standing -> [label, badge class] */
export const STANDING = { red: ['红榜', 'red'], black: ['黑榜', 'black'], none: ['未上榜', ''], unrated: ['未评价', ''],
  insufficient: ['数据不足', ''] };
/* What the credit file names: rater levels, credit item kinds, categories and review states, grades, results. */
export const RATER_LEVELS = { street: '街道', community: '社区' };
export const CREDIT_KINDS = { basic: '基本信息', good: '良好信息', bad: '不良信息' };
export const CREDIT_CATEGORIES = {
  party_building: '党建', staffing: '人员配备', service_record: '服务记录', award: '表彰奖励', praise: '业主表扬',
  owner_complaint: '业主投诉', penalty: '行政处罚', bad_credit: '失信记录', registration: '备案信息',
};
export const REVIEW_STATES = { pending: '待审核', approved: '已通过', rejected: '已驳回' };
export const CREDIT_GRADES = { A: '优秀', B: '良好', C: '合格', D: '较差' };
export const RECTIFICATION_RESULTS = { pending: '待复查', passed: '复查通过', failed: '复查未通过' };
export const PARTY_KINDS = {
  community_committee: '社区党委', grid_branch: '网格党支部', compound_branch: '小区党支部',
  building_group: '楼院党小组', company_branch: '物业企业党组织',
};
export const ROLE_NAMES = {
  admin: '管理员', street: '街道办', community: '社区', grid_worker: '网格员', property_company: '物业企业',
  planner: '规划人员', public: '公众', reviewer: '审核员',
};
export const ACTION_NAMES = {
  register: '立案', reject: '不予立案', dispatch: '派遣', accept: '接单', start: '开始处置', respond: '响应',
  handle: '处置完成', resolve: '处置完成', send_back: '退回', close: '结案', verify: '核查结案', reopen: '重新打开',
  merge: '合并', rate: '评价', assign: '派单', report: '上报', note: '备注', photo: '照片',
  supervise: '督办', escalate: '吹哨报到', escalation_answer: '部门报到', reassign: '改派',
  auto_dispatch: '自动派遣', comment: '备注', absorb: '并入重复工单', return: '退单', reroute: '重新派遣',
  place: '人工定位', placement: '人工定位', callback: '回访',
};

/* A history event's name in Chinese: the workflow's own title, else the table above, else a plain word
 * (an English code is never shown). */
export function actionName(action, titles = {}) {
  return titles[action] || ACTION_NAMES[action] || '处理';
}
/* Integrity fault kinds (gridgov check) -> [name, colour], as gis/layers/checks.py names them. */
export const FAULT_KINDS = {
  invalid_geometry: ['图形无效', '#e6007e'], outside_parent: ['超出上级范围', '#ff6d00'], overlap: ['同层重叠', '#aa00ff'],
  gap: ['覆盖缝隙', '#00b8d4'], orphan_code: ['编码无所属', '#6d4c41'], duplicate_code: ['编码重复', '#263238'],
};
export const KIND_NAMES = {
  compound: '小区', building: '楼栋', street: '街道', community: '社区', grid: '网格', micro_grid: '微网格',
  complaint: '工单',
};

/* Complaint categories by code, filled once the category list has been fetched (until then a code reads as
 * itself). */
const categoryLabels = new Map();

export function setCategories(categories) {
  for (const c of categories) categoryLabels.set(c.code, `${c.name_zh}（${c.major_class}）`);
}

export function categoryName(code) {
  return categoryLabels.has(code) ? categoryLabels.get(code) : code;
}
