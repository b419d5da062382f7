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
           {due_at} AS due_at
    FROM arrived a
    LEFT JOIN choice ch ON ch.category_code = a.category_code AND ch.place_kind = a.place_kind
    LEFT JOIN informed i ON i.grid_code = a.grid_code
    JOIN deadline_policy p ON p.deadline_class = a.deadline_class
)
