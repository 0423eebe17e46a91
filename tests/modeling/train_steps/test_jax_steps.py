"""The JAX steps are pure functions of their state: checked directly, jitted."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from helpers import make_model, only_backend

pytestmark = only_backend("jax")


def test_train_step_is_pure_and_threads_metric_state(small) -> None:
    import jax
    import keras

    from fraudkeras.modeling.train_steps import jax_steps

    model = make_model(small.features(), optimizer=keras.optimizers.SGD(learning_rate=0.1))
    x, y = small.features()[:256].astype(np.float32), small.labels()[:256]
    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )
    step = jax.jit(lambda s, d: jax_steps.train_step(model, s, d))
    logs, new_state = step(state, (x, y))
    again, _ = step(state, (x, y))
    assert float(logs["loss"]) == float(again["loss"])  # same state in, same result out
    # Model variables are untouched: the step returned new values instead.
    np.testing.assert_array_equal(
        np.asarray(model.trainable_variables[0].value), np.asarray(state[0][0])
    )
    assert not np.allclose(np.asarray(new_state[0][0]), np.asarray(state[0][0]))
    # The loss tracker's (total, count) moved from (0, 0) to (loss * 256, 256).
    total, count = (float(v) for v in new_state[3][:2])
    assert count == 256 and total == pytest.approx(float(logs["loss"]) * 256, rel=1e-6)
    assert set(logs) == {"loss"}  # the AUC monitors run in test_step, on validation data
    for before, after in zip(state[3][2:], new_state[3][2:], strict=True):
        # passed through untouched (an update over 256 rows would fill these counts)
        np.testing.assert_array_equal(np.asarray(after), np.asarray(before))


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
    probabilities = np.asarray(model.predict(x, verbose=0)).ravel()
    # keras.metrics.AUC interpolates over 200 thresholds: close to sklearn, not equal.
    assert float(logs["roc_auc"]) == pytest.approx(roc_auc_score(y, probabilities), abs=0.01)


def test_steps_module_matches_backend() -> None:
    from fraudkeras.modeling import model

    assert model._STEPS.__name__ == "fraudkeras.modeling.train_steps.jax_steps"
