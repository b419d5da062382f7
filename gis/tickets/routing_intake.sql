inserted AS (
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
