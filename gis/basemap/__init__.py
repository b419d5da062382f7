"""The demo's own base map (底图), generated from the city's layers into an MBTiles file of vector tiles."""
