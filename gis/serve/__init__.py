"""Serving the layers: vector tiles and their keys, OGC API Features, map data, the responsibility chain and
bbox parsing."""
