"""The network's default shape, Keras-free so configuration can name it before a
backend is chosen."""

from __future__ import annotations

#: hidden layer sizes between the 30 scaled features and the fraud logit
DEFAULT_HIDDEN_UNITS = (64, 32, 16)
