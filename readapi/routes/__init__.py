"""One module per resource; each exposes `handlers(settings)` -> its route handlers."""
