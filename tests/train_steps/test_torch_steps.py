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


def _numpy_loss_and_grads(weights, x, y, class_weight):
    """Hand-written forward, weighted BCE-with-logits and backward in float64."""
    mean, variance, *layers = weights
    h = (x - mean) / np.maximum(np.sqrt(variance), 1e-7)
    activations, pre = [h], []
    for i in range(0, len(layers), 2):
        z = activations[-1] @ layers[i] + layers[i + 1]
        pre.append(z)
        activations.append(np.maximum(z, 0) if i + 2 < len(layers) else z)
    z = activations[-1].ravel()
    w = np.where(y == 1, class_weight[1], class_weight[0])
    loss = np.mean(w * (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))
    delta = (w * (1 / (1 + np.exp(-z)) - y) / len(y))[:, None]
    grads = []
    for i in range(len(layers) // 2 - 1, -1, -1):
        grads = [activations[i].T @ delta, delta.sum(0), *grads]
        if i:
            delta = (delta @ layers[2 * i].T) * (pre[i - 1] > 0)
    return loss, grads


def test_adam_step_matches_numpy(small) -> None:
    """Two Adam steps (the fused path) against a NumPy forward, backward and Keras's
    Adam rule: ``var -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``."""
    import keras

    from fraudkeras.modeling.train_steps import torch_steps

    model = make_model(
        small.features(), class_weight=(0.6, 4.0), optimizer=keras.optimizers.Adam(1e-2)
    )
    assert torch_steps.plain_adam(model.optimizer)
    x, y = small.features()[:512].astype(np.float32), small.labels()[:512].astype(np.float64)
    scaler = [model.scaler.adapt_mean, model.scaler.adapt_variance]
    trainable = model.trainable_variables
    weights = [keras.ops.convert_to_numpy(w).astype(np.float64) for w in [*scaler, *trainable]]
    m = [np.zeros_like(w) for w in weights[2:]]
    v = [np.zeros_like(w) for w in weights[2:]]
    losses = []
    for t, rows in enumerate((slice(0, 256), slice(256, 512)), start=1):
        loss, grads = _numpy_loss_and_grads(
            weights, x[rows].astype(np.float64), y[rows], (0.6, 4.0)
        )
        logs = torch_steps.train_step(
            model, (keras.ops.convert_to_tensor(x[rows]), keras.ops.convert_to_tensor(y[rows]))
        )
        alpha = 1e-2 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            weights[2 + i] = weights[2 + i] - alpha * m[i] / (np.sqrt(v[i]) + 1e-7)
        losses.append(loss)
        np.testing.assert_allclose(float(logs["loss"]), np.mean(losses), rtol=1e-5)  # running
        for expected, got in zip(weights[2:], trainable, strict=True):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(got), expected, atol=2e-5)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 2


def test_fit_trains_on_one_thread_and_restores_the_setting(small) -> None:
    import keras
    import torch

    from fraudkeras.modeling.train_steps import torch_steps

    seen = []

    class Threads(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs=None) -> None:
            seen.append(torch.get_num_threads())

    model = make_model(small.features(), optimizer=keras.optimizers.Adam(1e-3))
    torch.set_num_threads(2)
    x, y = small.features()[:512].astype(np.float32), small.labels()[:512]
    model.fit(x, y, batch_size=256, epochs=1, verbose=0, callbacks=[Threads()])
    assert set(seen) == {torch_steps.TRAINING_THREADS}
    assert torch.get_num_threads() == 2
