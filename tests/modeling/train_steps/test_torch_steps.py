"""The torch step computes gradients with backward() into each variable's .grad."""

from __future__ import annotations

import numpy as np

from helpers import make_model, only_backend

pytestmark = only_backend("torch")


def test_train_step_fills_grads_and_updates_in_place(small) -> None:
    import keras

    from fraudkeras.modeling.train_steps import torch_steps

    model = make_model(small.features(), optimizer=keras.optimizers.SGD(learning_rate=1.0))
    x, y = small.features()[:256].astype(np.float32), small.labels()[:256]
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables]
    logs = torch_steps.train_step(
        model, (keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y))
    )
    grads = [v.value.grad.numpy() for v in model.trainable_variables]
    after = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    for b, a, g in zip(before, after, grads, strict=True):
        np.testing.assert_allclose(b - a, g, atol=1e-6)
    assert set(logs) == {"loss"}  # the AUC monitors run in test_step


def test_steps_module_matches_backend() -> None:
    from fraudkeras.modeling import model

    assert model._STEPS.__name__ == "fraudkeras.modeling.train_steps.torch_steps"
