"""The TensorFlow step, run inside tf.function (GradientTape under graph mode),
against the float64 NumPy reference of tests/numpy_reference.py."""

from __future__ import annotations

import numpy as np
import numpy_reference as reference
import pytest

from helpers import adam_step_case, largest_gap, only_backend

pytestmark = only_backend("tensorflow")

#: Measured on CPU: max |weight - NumPy float64 weight| after the step 6.0e-8, which is
#: the float32 rounding of the result (updates reach 4.5e-3, and a 0.1% gradient error
#: moves a weight by 1.9e-6); loss relative gap 1.0e-7. Tolerances: a few times those.
WEIGHT_ATOL = 2e-7
LOSS_RTOL = 5e-7


def test_train_step_matches_the_numpy_reference_in_a_traced_function(small) -> None:
    import tensorflow as tf

    from fraudkeras.modeling.train_steps import tensorflow_steps

    x, y = small.features()[:256].astype(np.float32), small.labels()[:256]
    case = adam_step_case(small.features(), x, y)
    traced = tf.function(lambda data: tensorflow_steps.train_step(case.model, data))
    logs = traced((tf.constant(x), tf.constant(y)))
    after = reference.weights_of(case.model).params
    print(f"tensorflow: weight gap {largest_gap(after, case.after):.2e}, loss "
          f"{float(logs['loss'])!r} vs {case.loss!r}")  # fmt: skip
    assert float(logs["loss"]) == pytest.approx(case.loss, rel=LOSS_RTOL)
    for got, expected in zip(after, case.after, strict=True):
        np.testing.assert_allclose(got, expected, rtol=0, atol=WEIGHT_ATOL)
    assert set(logs) == {"loss"}  # the AUC monitors run in test_step


def test_steps_module_matches_backend() -> None:
    from fraudkeras.modeling import model

    assert model._STEPS.__name__ == "fraudkeras.modeling.train_steps.tensorflow_steps"
