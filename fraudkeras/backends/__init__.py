"""What differs between the Keras backends, behind one interface.

:class:`Backend` names everything that is not the same on JAX, PyTorch and
TensorFlow: how a training step takes gradients, how batches feed ``fit``, how
a function of the model is compiled, how processes form a group and how many
steps one compiled call may run. :func:`current` picks the implementation of
the active Keras backend once, importing only that backend's module; no other
module of fraudkeras asks which backend runs.
"""

from __future__ import annotations

from fraudkeras.backends.base import Backend, Group
from fraudkeras.backends.choice import current

__all__ = ["Backend", "Group", "current"]
