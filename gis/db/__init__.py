"""The database: the engine and sessions, the embedded cluster, migrations and the table registry."""
