"""Complaint intake (诉求受理): Open311 GeoReport v2, hotline (12345) batch import, address geocoding (地址匹配)
and the placement of each complaint on its micro-grid (微网格) with the parties responsible at that moment.

Nothing is dropped: a row is imported (placed inside, snapped, or queued for review), a duplicate of one already
held, or rejected with a reason that is written back out for correction.
"""
