"""What ``FraudMLP``'s users get from Keras's own calls, on any backend.

- **Inputs by name.** ``predict``, ``evaluate``, ``fit`` and calling the model
  take pandas or polars DataFrames and dicts of columns, matched by name
  (:mod:`fraudkeras.data.feature_matrix`): Keras alone would read a frame's
  columns in the frame's order. Arrays, tensors and datasets pass as they are.
- **A compile any backend can run.** A ``.keras`` file carries its compile
  configuration, and a model trained with ``steps_per_execution > 1`` (JAX,
  TensorFlow) would make Keras's PyTorch trainer refuse every ``predict``,
  ``evaluate`` and ``fit`` after loading. Compiling from a saved configuration
  goes through the model's own ``compile`` (``FraudMLP.compile`` lowers
  ``steps_per_execution`` to what the backend runs); a saved ``jit_compile`` is
  the saving backend's choice, and is chosen again here.
"""

from __future__ import annotations

from typing import Any

import keras

from fraudkeras.data.feature_matrix import feature_matrix, is_table
from fraudkeras.modeling.features import PREPARED


def model_input(x: Any) -> Any:
    """A table as the feature matrix; anything else (arrays, tensors, datasets,
    the ``{PREPARED: rows}`` batches training feeds) unchanged."""
    if is_table(x) and not (isinstance(x, dict) and PREPARED in x):
        return feature_matrix(x)
    return x


def labels_input(y: Any) -> Any:
    """A pandas or polars Series (or one-column frame) of labels as a NumPy array."""
    to_numpy = getattr(y, "to_numpy", None)
    return to_numpy() if callable(to_numpy) and not is_table(y) else y


class PortableModel(keras.Model):
    """A ``keras.Model`` whose user-facing calls take named inputs and whose
    compile configuration loads under every backend (see the module's docstring)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            args = (model_input(args[0]), *args[1:])
        return super().__call__(*args, **kwargs)

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        return super().predict(model_input(x), *args, **kwargs)

    def evaluate(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        return super().evaluate(model_input(x), labels_input(y), *args, **kwargs)

    def fit(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        validation = kwargs.get("validation_data")
        if isinstance(validation, tuple | list) and validation:
            kwargs["validation_data"] = (
                model_input(validation[0]),
                *(labels_input(part) for part in validation[1:]),
            )
        return super().fit(model_input(x), labels_input(y), *args, **kwargs)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """Keras's own, which skips a model that overrides ``compile``; this one
        compiles through the model's ``compile`` (and its backend limit). A saved
        ``jit_compile=True`` is what ``"auto"`` resolved to on the saving backend
        (JAX, TensorFlow); it is ``"auto"`` again here, so PyTorch does not
        ``torch.compile`` every step of a model that never asked for it."""
        config = keras.saving.deserialize_keras_object(config)
        if config.get("jit_compile") is True:
            config["jit_compile"] = "auto"
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)
