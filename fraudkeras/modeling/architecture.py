"""The network's default shape and its optional levers, Keras-free so
configuration can name them before a backend is chosen."""

from __future__ import annotations

from fraudkeras._core.validation import check_choice, check_int

#: hidden layer sizes between the 30 scaled features and the fraud logit
DEFAULT_HIDDEN_UNITS = (64, 32, 16)
#: numeric embeddings between the scaled features and the hidden layers
#: (:mod:`fraudkeras.modeling.embeddings`); "none" feeds the scaled features as they are
EMBEDDINGS = ("none", "periodic")
#: one member: no ensemble (:mod:`fraudkeras.modeling.ensemble`)
SINGLE_MEMBER = 1


def check_levers(embeddings: str, ensemble: int) -> None:
    """Refuse an unknown embedding or a member count below one."""
    check_choice("embeddings", embeddings, EMBEDDINGS)
    check_int("ensemble", ensemble, minimum=SINGLE_MEMBER)
