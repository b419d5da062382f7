"""Long-running documents made for a user: the street report as a job (see `gis.reports.jobs`)."""
