"""gridgov's HTTP layer: thin FastAPI routers over `gis`."""
