"""The governance layers: their models, the pyramid, import and export, checks, coordinate systems and the
category catalogue."""
