"""The JAX steps are pure functions of their state: checked directly, jitted, and
against the float64 NumPy reference of tests/numpy_reference.py."""

from __future__ import annotations

import numpy as np
import numpy_reference as reference
import pytest
from sklearn.metrics import roc_auc_score

from helpers import adam_step_case, largest_gap, make_model, only_backend

pytestmark = only_backend("jax")

#: Measured on CPU: max |weight - NumPy float64 weight| after the step 6.0e-8, which is
#: the float32 rounding of the result (updates reach 4.5e-3, and a 0.1% gradient error
#: moves a weight by 1.9e-6); loss relative gap 1.0e-7. Tolerances: a few times those.
WEIGHT_ATOL = 2e-7
LOSS_RTOL = 5e-7


def test_train_step_matches_the_numpy_reference_and_threads_state(small) -> None:
    import jax

    from fraudkeras.modeling.train_steps import jax_steps

    x, y = small.features()[:256].astype(np.float32), small.labels()[:256]
    case = adam_step_case(small.features(), x, y)
    model = case.model
    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )
    step = jax.jit(lambda s, d: jax_steps.train_step(model, s, d))
    logs, new_state = step(state, (x, y))
    # Model variables are untouched: the step returned new values instead.
    np.testing.assert_array_equal(reference.weights_of(model).params[0], case.before.params[0])
    for variable, value in zip(model.trainable_variables, new_state[0], strict=True):
        variable.assign(value)
    after = reference.weights_of(model).params
    print(f"jax: weight gap {largest_gap(after, case.after):.2e}, loss "
          f"{float(logs['loss'])!r} vs {case.loss!r}")  # fmt: skip
    assert float(logs["loss"]) == pytest.approx(case.loss, rel=LOSS_RTOL)
    for got, expected in zip(after, case.after, strict=True):
        np.testing.assert_allclose(got, expected, rtol=0, atol=WEIGHT_ATOL)
    # Adam's step count moved from the 9 steps adam_step_case set to 10.
    optimizer_variables = dict(zip(
        [v.path for v in model.optimizer.variables], new_state[2], strict=True
    ))  # fmt: skip
    assert int(optimizer_variables[model.optimizer.iterations.path]) == 10
    # The loss tracker's (total, count) moved from (0, 0) to (loss * 256, 256).
    total, count = (float(v) for v in new_state[3][:2])
    assert count == 256 and total == pytest.approx(case.loss * 256, rel=LOSS_RTOL)
    assert set(logs) == {"loss"}  # the AUC monitors run in test_step, on validation data
    for before, after_update in zip(state[3][2:], new_state[3][2:], strict=True):
        # passed through untouched (an update over 256 rows would fill these counts)
        np.testing.assert_array_equal(np.asarray(after_update), np.asarray(before))


def test_test_step_updates_every_metric(small) -> None:
    import jax

    from fraudkeras.modeling.train_steps import jax_steps

    model = make_model(small.features())
    x, y = small.features()[:512].astype(np.float32), small.labels()[:512]
    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.metrics_variables],
    )
    logs, _ = jax.jit(lambda s, d: jax_steps.test_step(model, s, d))(state, (x, y))
    assert set(logs) == {"loss", "pr_auc", "roc_auc"}
    weights = reference.weights_of(model)
    assert float(logs["loss"]) == pytest.approx(
        reference.weighted_bce(y, reference.logits(weights, x), 1.0, 1.0), rel=LOSS_RTOL
    )
    probabilities = reference.probabilities(weights, x)
    # keras.metrics.AUC interpolates over 200 thresholds: close to sklearn, not equal.
    assert float(logs["roc_auc"]) == pytest.approx(roc_auc_score(y, probabilities), abs=0.01)


def test_steps_module_matches_backend() -> None:
    from fraudkeras.modeling import model

    assert model._STEPS.__name__ == "fraudkeras.modeling.train_steps.jax_steps"
