"""Training a model end to end into a run folder."""
