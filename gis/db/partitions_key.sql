-- The complaint key of a partitioned complaint table (gis/db/partitions.py): one row per complaint, unpartitioned,
-- so that ids and the deduplication key (source, external_id) stay unique across months and the tables that
-- point at a complaint have a single-column key to point at. Kept by statement-level triggers on `complaint`
-- (statements on the parent; moving rows between partitions directly leaves it alone, as it should).

CREATE TABLE complaint_key (
    id bigint PRIMARY KEY,
    source varchar(16) NOT NULL,
    external_id text
);
CREATE UNIQUE INDEX uq_complaint_key_source_external ON complaint_key (source, external_id)
    WHERE external_id IS NOT NULL;

CREATE FUNCTION complaint_key_insert() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO complaint_key (id, source, external_id) SELECT id, source, external_id FROM new_complaints;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION complaint_key_update() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE complaint_key k SET source = n.source, external_id = n.external_id
    FROM new_complaints n
    WHERE k.id = n.id AND (k.source, k.external_id) IS DISTINCT FROM (n.source, n.external_id);
    RETURN NULL;
END
$fn$;

-- Deleting the key cascades to tickets, intake facts, parties, duplicates and suggestions, as deleting a complaint
-- did before the conversion.
CREATE FUNCTION complaint_key_delete() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM complaint_key k USING old_complaints o WHERE k.id = o.id;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION complaint_key_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM complaint_key;
    RETURN NULL;
END
$fn$;

-- Named so that they fire before the ticket triggers (same event, name order): a new ticket's foreign key
-- finds its complaint's key.
CREATE TRIGGER complaint_key_insert AFTER INSERT ON complaint
    REFERENCING NEW TABLE AS new_complaints FOR EACH STATEMENT EXECUTE FUNCTION complaint_key_insert();
CREATE TRIGGER complaint_key_update AFTER UPDATE ON complaint
    REFERENCING OLD TABLE AS old_complaints NEW TABLE AS new_complaints
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_key_update();
CREATE TRIGGER complaint_key_delete AFTER DELETE ON complaint
    REFERENCING OLD TABLE AS old_complaints FOR EACH STATEMENT EXECUTE FUNCTION complaint_key_delete();
CREATE TRIGGER complaint_key_truncate AFTER TRUNCATE ON complaint
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_key_truncate();
