"""User-facing tasks built from the models: link prediction (and, later, generation)."""
