/* Who is offered the registry's edit forms: a registry role, this deployment serving the forms' routes
 * (/map/config.json), and — beyond the administrator — a compound inside one of the person's own units. A compound's
 * code begins with its community's code, which begins with its street's, so the scope is a prefix. This only
 * decides what the page offers: the server checks every request again (404 outside the scope). */
import { has, session } from '../api.js';

export const EDIT_ROLES = ['admin', 'street', 'community'];
export const PARTIES = '/registry/compounds/{compound_code}/parties';

/* Whether the signed-in person may edit compound `code`. */
export function mayEdit(code) {
  if (!session.token || !EDIT_ROLES.includes(session.role) || !has('GET', PARTIES)) return false;
  if (session.role === 'admin') return true;
  const scope = (session.me && session.me.scope) || [];
  return scope.some((unit) => code.startsWith(unit));
}
