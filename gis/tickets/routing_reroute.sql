routed AS (
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
