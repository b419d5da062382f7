/* A small event bus: modules announce what happened and others react, instead of calling into each other.
 *
 *   map:drawn        a redraw after a move finished (every layer fetched and drawn)
 *   filters:change   the complaint filters changed; detail {applied} is false when they were cleared
 *   planner:change   the planners' overlay was switched; detail {on}
 *   overlay:change   a hotspot control changed (the shareable link notes it)
 *   tab:change       a sidebar tab was chosen; detail {tab}
 *   session:change   someone signed in or out; detail {signedIn}
 *   session:start    a signed-in session is ready for the work tools (after sign-in, or on a reload)
 *   ticket:changed   tickets or complaints were changed from the map (transition, bulk assignment, placement)
 *   complaint:open   a complaint was chosen on the map; detail is its properties
 *   complaint:find   a complaint was found by number; detail {id, lon, lat}
 *   area:assigned    the area's tickets were assigned in bulk (desk/assign.js); the area list refreshes
 *   desk:open        the street desk's sheet shows a view; detail {view} (desk/sheet.js)
 *   desk:drill       the tickets behind one rate are asked for; detail {rate, level, unit, from, to} (desk/drill.js)
 *   ticket:open      a ticket's details are shown; detail {id, place} (work/tickets.js; field/ marks it)
 *   panel:closed     the side panel was closed (field/sheet.js)
 *   field:reported   a new issue was reported from the field; detail is the answer (field/report.js)
 *   outbox:change    the offline queue changed; detail {waiting, conflicts, refused, offline} (offline/outbox.js)
 *   registry:edit    a compound's registry forms are asked for; detail {code, latlng} (panels/responsibility.js)
 *   registry:changed the registry was edited from the map; detail {compound} (work/registry.js)
 *   outbox:conflict  a queued request met a ticket moved meanwhile (409); detail {record, ticket}
 *   legend:change    an overlay outside the redraw (the hotspots) was drawn or removed (panels/legend.js)
 *   rating:open      a company's credit file is asked for from the red/black list; detail {id, name} (rating/)
 *   rating:closed    the credit file's selection was cleared and its compounds' outline removed (rating/)
 */

const handlers = new Map();

export function on(type, handler) {
  if (!handlers.has(type)) handlers.set(type, []);
  handlers.get(type).push(handler);
}

/* Calls every handler of the event in the order they subscribed; one that throws is reported and the others
 * still run. */
export function emit(type, detail = {}) {
  for (const handler of handlers.get(type) || []) {
    try {
      handler(detail);
    } catch (error) {
      console.error(error);
    }
  }
}
