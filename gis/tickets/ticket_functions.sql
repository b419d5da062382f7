CREATE OR REPLACE FUNCTION ticket_due_at(start timestamptz, class text) RETURNS timestamptz
LANGUAGE sql STABLE AS $fn$
    SELECT {due} FROM deadline_policy p WHERE p.deadline_class = class
$fn$;

CREATE OR REPLACE FUNCTION ticket_intake() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    {intake};
    RETURN NULL;
END
$fn$;
