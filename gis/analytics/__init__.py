"""Analytics for governance: complaint hotspots, coverage of services and party organisation, the red/black list
(红黑榜) of property companies, the old-estate subsidy, and the printable street report.

Core functions take a synchronous SQLAlchemy `Connection`; the API runs them through `AsyncConnection.run_sync`,
so the same SQL serves the HTTP API, the CLI and the report.
"""
