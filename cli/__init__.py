"""The `gridgov` command: the composition root that wires the core (`gis`), the demo city (`fixtures`) and
the web app (`api`)."""
