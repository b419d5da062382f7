"""Suggested dispatch: a text model trained on the city's own history proposes a complaint's category and its
responsible party (model), measured against the keyword peer (history), kept as versions (store)."""
