"""Seeding everything a model's initial weights and Keras's random ops depend on,
without importing TensorFlow under the other backends.

``keras.utils.set_random_seed`` also seeds TensorFlow whenever it is installed,
which imports it (seconds, and C++ start-up lines on the terminal) in a JAX or
PyTorch process that never uses it (keras-team/keras#18455). This does the rest
of what it does; Keras's global seed has no public setter but that one, hence
the three ``keras.src`` names below.
"""

from __future__ import annotations

import random
import sys

import keras
import numpy as np
from keras.src.backend.common import global_state
from keras.src.random import seed_generator
from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED


def seed_everything(seed: int) -> None:
    """Python's, NumPy's, Keras's global and the active backend's seeds."""
    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    backend = keras.backend.backend()
    if backend == "tensorflow" or "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.random.set_seed(seed)
    if backend == "torch":
        import torch

        torch.manual_seed(seed)
