"""The routing of tickets in SQL: which rule, which assignee, who is informed, the deadline.

Used by the tickets migration (its intake trigger) and by re-routing when a complaint is placed by hand; kept
here once so that both route alike.
"""

LOCAL_ZONE = "Asia/Shanghai"
WORKDAY_MINUTES = 480

# The deadline of a ticket reported at {start} in class policy {p}: calendar time is plain addition; working time
# is the working minute reached by counting the policy's minutes from {start} on the working calendar.
DUE_AT_SQL = """coalesce(
    CASE WHEN {p}.basis = 'working' THEN (
        SELECT ((w2.day + w2.start_time)
                + make_interval(secs => (s.at_minute + wm.minutes - w2.cum_minutes) * 60))
               AT TIME ZONE '%(zone)s'
        FROM (SELECT w.cum_minutes + least(greatest(floor(extract(epoch FROM ({start} AT TIME ZONE '%(zone)s')
                     - (w.day + w.start_time)) / 60), 0), w.minutes)::bigint AS at_minute
              FROM work_calendar w WHERE w.day = ({start} AT TIME ZONE '%(zone)s')::date) s
        CROSS JOIN (SELECT {p}.amount * CASE {p}.unit WHEN 'days' THEN %(day)s ELSE 60 END AS minutes) wm
        CROSS JOIN LATERAL (
            SELECT w2.* FROM work_calendar w2
            WHERE w2.minutes > 0 AND w2.cum_minutes < s.at_minute + wm.minutes
            ORDER BY w2.cum_minutes DESC LIMIT 1) w2
    ) END,
    {start} + make_interval(hours => {p}.amount * CASE {p}.unit WHEN 'days' THEN 24 ELSE 1 END))""" % {
    "zone": LOCAL_ZONE, "day": WORKDAY_MINUTES}

# The plan for a set of complaints ({source}, filtered by {where}), set-based: place kind, the best routing rule per
# category x place kind, the parties always informed (grid workers, grid party branch), the deadline.
PLAN_SQL = """
WITH arrived AS (
    SELECT n.id AS complaint_id, n.category_code, n.reported_at, n.street_code, n.community_code, n.grid_code,
           n.compound_code, cp.property_company_id, c.deadline_class,
           CASE WHEN n.compound_code IS NOT NULL AND cp.property_company_id IS NOT NULL THEN 'managed_compound'
                WHEN n.compound_code IS NOT NULL THEN 'unmanaged_compound'
                WHEN n.community_code IS NOT NULL THEN 'open_space'
                WHEN n.street_code IS NOT NULL THEN 'street_only'
                ELSE 'unlocated' END AS place_kind
    FROM {source} n
    JOIN category c ON c.code = n.category_code
    LEFT JOIN compound cp ON cp.code = n.compound_code AND cp.valid_to IS NULL
    {where}
), choice AS (
    SELECT DISTINCT ON (c.code, k.place_kind)
           c.code AS category_code, k.place_kind, r.id AS rule_id, r.assignee_kind, r.department, r.auto_dispatch
    FROM category c
    CROSS JOIN (VALUES ('managed_compound'), ('unmanaged_compound'), ('open_space'), ('street_only'),
                       ('unlocated')) k(place_kind)
    JOIN routing_rule r ON r.active
         AND (r.category_code IS NULL OR r.category_code = c.code)
         AND (r.responsible_kind IS NULL OR r.responsible_kind = c.responsible_kind)
         AND (r.place = 'any' OR r.place = k.place_kind
              OR (r.place = 'compound' AND k.place_kind IN ('managed_compound', 'unmanaged_compound'))
              OR (r.place = 'open_space' AND k.place_kind = 'street_only'))
         AND CASE r.assignee_kind
               WHEN 'property_company' THEN k.place_kind = 'managed_compound'
               WHEN 'community' THEN k.place_kind IN ('managed_compound', 'unmanaged_compound', 'open_space')
               WHEN 'street_department' THEN k.place_kind <> 'unlocated'
               ELSE true END
    ORDER BY c.code, k.place_kind, r.priority, r.id
), grids AS (
    SELECT DISTINCT grid_code FROM arrived WHERE grid_code IS NOT NULL
), informed AS (
    SELECT who.grid_code, array_agg(who.party ORDER BY who.party) AS parties FROM (
        SELECT w.grid_code, 'grid_worker:' || w.id AS party
        FROM grid_worker w JOIN grids g ON g.grid_code = w.grid_code
        UNION ALL
        SELECT o.unit_code, 'party_organisation:' || o.code
        FROM party_organisation o JOIN grids g ON g.grid_code = o.unit_code
        WHERE o.kind = 'grid_branch'
    ) who GROUP BY who.grid_code
), planned AS (
    SELECT a.*, ch.rule_id, ch.department,
           CASE WHEN ch.auto_dispatch THEN ch.assignee_kind END AS assignee_kind,
           CASE WHEN NOT ch.auto_dispatch THEN NULL
                WHEN ch.assignee_kind = 'property_company' THEN a.property_company_id::text
                WHEN ch.assignee_kind = 'community' THEN a.community_code
                WHEN ch.assignee_kind = 'street_department' THEN a.street_code
                ELSE ch.department END AS assignee_code,
           coalesce(ch.auto_dispatch, false) AS auto,
           coalesce(i.parties, '{{}}') AS parties,
           p.response_hours,
           %(due)s AS due_at
    FROM arrived a
    LEFT JOIN choice ch ON ch.category_code = a.category_code AND ch.place_kind = a.place_kind
    LEFT JOIN informed i ON i.grid_code = a.grid_code
    JOIN deadline_policy p ON p.deadline_class = a.deadline_class
)"""

# Tickets for a set of new complaints, set-based: place kind, the best routing rule per category × place kind,
# the parties always informed (grid workers, grid party branch), the deadline, and one history event each.
INTAKE_SQL = (PLAN_SQL + """, inserted AS (
    INSERT INTO ticket (complaint_id, category_code, state, reported_at, street_code, community_code, grid_code,
                        compound_code, property_company_id, deadline_class, due_at, response_due_at,
                        assignee_kind, assignee_code, department, rule_id, informed, registered_at, dispatched_at)
    SELECT complaint_id, category_code, CASE WHEN auto THEN 'dispatched' ELSE 'reported' END, reported_at,
           street_code, community_code, grid_code, compound_code, property_company_id, deadline_class, due_at,
           CASE WHEN auto THEN reported_at + make_interval(hours => response_hours) END,
           assignee_kind, assignee_code, CASE WHEN auto THEN department END, rule_id, parties,
           CASE WHEN auto THEN reported_at END, CASE WHEN auto THEN reported_at END
    FROM planned
    RETURNING id, state, reported_at, rule_id, assignee_kind, assignee_code, department
)
INSERT INTO ticket_event (ticket_id, at, actor, action, from_state, to_state, data)
SELECT id, reported_at, 'system', CASE WHEN state = 'dispatched' THEN 'auto_dispatch' ELSE 'report' END,
       CASE WHEN state = 'dispatched' THEN 'reported' END, state,
       CASE WHEN state = 'dispatched' THEN jsonb_build_object(
           'rule_id', rule_id, 'assignee_kind', assignee_kind, 'assignee_code', assignee_code,
           'department', department) END
FROM inserted
""") % {"due": DUE_AT_SQL.format(start="a.reported_at", p="p")}

REROUTE_SQL = (PLAN_SQL.format(
    source="(SELECT c.* FROM complaint c JOIN ticket t ON t.complaint_id = c.id AND t.state = 'reported' "
           "WHERE c.id = ANY(CAST(:ids AS bigint[])))", where="") + """, routed AS (
    UPDATE ticket t
    SET rule_id = p.rule_id, informed = p.parties, assignee_kind = p.assignee_kind, assignee_code = p.assignee_code,
        department = CASE WHEN p.auto THEN p.department END,
        state = CASE WHEN p.auto THEN 'dispatched' ELSE t.state END,
        registered_at = CASE WHEN p.auto THEN now() ELSE t.registered_at END,
        dispatched_at = CASE WHEN p.auto THEN now() ELSE t.dispatched_at END,
        response_due_at = CASE WHEN p.auto THEN now() + make_interval(hours => p.response_hours)
                               ELSE t.response_due_at END,
        version = t.version + 1, updated_at = now()
    FROM planned p
    WHERE t.complaint_id = p.complaint_id AND t.state = 'reported'
    RETURNING t.id, t.state, t.rule_id, t.assignee_kind, t.assignee_code, t.department
)
INSERT INTO ticket_event (ticket_id, at, actor, action, from_state, to_state, data)
SELECT id, now(), 'system', 'auto_dispatch', 'reported', 'dispatched', jsonb_build_object(
    'rule_id', rule_id, 'assignee_kind', assignee_kind, 'assignee_code', assignee_code, 'department', department,
    'reason', 'placed by hand')
FROM routed WHERE state = 'dispatched'
""") % {"due": DUE_AT_SQL.format(start="a.reported_at", p="p")}
"""Route again the still unregistered tickets of complaints (`:ids`) whose place was set by hand: a complaint that
waited in the review queue had no place to route by. The deadline stays the one counted from the report."""
