"""The TensorFlow step runs inside tf.function (GradientTape under graph mode)."""

from __future__ import annotations

import numpy as np

from helpers import make_model, only_backend

pytestmark = only_backend("tensorflow")


def test_train_step_runs_in_a_traced_function(small) -> None:
    import keras
    import tensorflow as tf

    from fraudkeras.modeling.train_steps import tensorflow_steps

    model = make_model(small.features(), optimizer=keras.optimizers.SGD(learning_rate=1.0))
    x, y = small.features()[:256].astype(np.float32), small.labels()[:256]
    traced = tf.function(lambda data: tensorflow_steps.train_step(model, data))
    before = [v.numpy().copy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        loss = model.weighted_loss(y, model(x, training=True, return_logits=True))
    expected = tape.gradient(loss, model.trainable_variables)
    logs = traced((tf.constant(x), tf.constant(y)))
    for b, v, g in zip(before, model.trainable_variables, expected, strict=True):
        np.testing.assert_allclose(b - v.numpy(), g.numpy(), atol=1e-6)
    assert float(logs["loss"]) == float(loss.numpy())


def test_steps_module_matches_backend() -> None:
    from fraudkeras.modeling import model

    assert model._STEPS.__name__ == "fraudkeras.modeling.train_steps.tensorflow_steps"
