coalesce(
    CASE WHEN {p}.basis = 'working' THEN (
        SELECT ((w2.day + w2.start_time)
                + make_interval(secs => (s.at_minute + wm.minutes - w2.cum_minutes) * 60))
               AT TIME ZONE '{zone}'
        FROM (SELECT w.cum_minutes + least(greatest(floor(extract(epoch FROM ({start} AT TIME ZONE '{zone}')
                     - (w.day + w.start_time)) / 60), 0), w.minutes)::bigint AS at_minute
              FROM work_calendar w WHERE w.day = ({start} AT TIME ZONE '{zone}')::date) s
        CROSS JOIN (SELECT {p}.amount * CASE {p}.unit WHEN 'days' THEN {day} ELSE 60 END AS minutes) wm
        CROSS JOIN LATERAL (
            SELECT w2.* FROM work_calendar w2
            WHERE w2.minutes > 0 AND w2.cum_minutes < s.at_minute + wm.minutes
            ORDER BY w2.cum_minutes DESC LIMIT 1) w2
    ) END,
    {start} + make_interval(hours => {p}.amount * CASE {p}.unit WHEN 'days' THEN 24 ELSE 1 END))
