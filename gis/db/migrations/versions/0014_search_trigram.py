"""search: trigram indexes over the names of compounds, communities and street offices, for misspelt searches

Revision ID: 0014_search_trigram
Revises: 0001
Create Date: 2026-12-01

pg_trgm makes trigrams only of characters the database's locale calls letters, and gridgov's databases run in
the C locale, where no Chinese character is one: `show_trgm('东苑小区')` is empty. So names are compared through
`gridgov_search_key`: lower case, ASCII letters and digits kept, every other letter or digit written as three
latin letters drawn from its code point (so a trigram inside a character's three names that character), any
other character a word break. One character wrong in a four-character name then leaves a similarity of about
0.5 where unrelated names stay under 0.35. The indexes cover current rows (valid_to IS NULL), as search does.

The SQL is written out here: a migration must not import project code, which moves on after it.
"""
from alembic import op

revision = "0014_search_trigram"
down_revision = "0001"
branch_labels = None
depends_on = None


UPGRADE = """
CREATE OR REPLACE FUNCTION gridgov_search_key(name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(CASE
        WHEN ch ~ '^[0-9a-z]$' THEN ch
        WHEN ascii(ch) > 127 AND ch !~ '^[[:space:][:punct:]]$'
            THEN chr(97 + ascii(ch) % 26) || chr(97 + ascii(ch) / 26 % 26) || chr(97 + ascii(ch) / 676 % 26)
        ELSE ' ' END, '' ORDER BY i), '')
    FROM unnest(string_to_array(lower(name), NULL)) WITH ORDINALITY AS t(ch, i)
$$;

CREATE OR REPLACE FUNCTION gridgov_search_keys(names text[]) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(gridgov_search_key(name), ' ' ORDER BY i), '')
    FROM unnest(names) WITH ORDINALITY AS t(name, i)
$$;

CREATE INDEX ix_compound_name_search_trgm ON compound USING gin (gridgov_search_key(name) gin_trgm_ops)
    WHERE valid_to IS NULL;
CREATE INDEX ix_compound_aliases_search_trgm ON compound USING gin (gridgov_search_keys(aliases) gin_trgm_ops)
    WHERE valid_to IS NULL;
CREATE INDEX ix_community_name_search_trgm ON community USING gin (gridgov_search_key(name) gin_trgm_ops)
    WHERE valid_to IS NULL;
CREATE INDEX ix_street_name_search_trgm ON street USING gin (gridgov_search_key(name) gin_trgm_ops)
    WHERE valid_to IS NULL;
"""

DOWNGRADE = """
DROP INDEX IF EXISTS ix_street_name_search_trgm;
DROP INDEX IF EXISTS ix_community_name_search_trgm;
DROP INDEX IF EXISTS ix_compound_aliases_search_trgm;
DROP INDEX IF EXISTS ix_compound_name_search_trgm;
DROP FUNCTION IF EXISTS gridgov_search_keys(text[]);
DROP FUNCTION IF EXISTS gridgov_search_key(text);
"""


def upgrade() -> None:
    """Install the search key functions and the trigram indexes."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Remove them."""
    op.execute(DOWNGRADE)
