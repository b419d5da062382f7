"""gridgov domain and spatial core: the governance pyramid, parties, complaints and their spatial logic.

Nothing here imports `api` or `webmap`.
"""

STORAGE_SRID = 4326
"""Every geometry is stored in WGS-84 lon/lat (EPSG:4326); input in other systems is converted on the way in."""

METRIC_SRID = 4548
"""CGCS2000 / 3-degree Gauss-Kruger CM 117E: the metric system used for areas and distances around Tai'an."""
