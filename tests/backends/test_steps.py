"""Every backend's training step is Keras's compile and fit: the model's own call,
its compiled loss, the compiled optimizer and metrics. Checked through the calls
users make (``train_on_batch``, ``fit``, ``evaluate``) against the float64 NumPy
reference of tests/numpy_reference.py, under each backend (tox runs this file
under all three)."""

from __future__ import annotations

import keras
import numpy as np
import numpy_reference as reference
import pytest

from helpers import adam_step_case, largest_gap, make_model

#: Measured on CPU: max |weight - NumPy float64 weight| after one step 6.0e-8 (JAX,
#: torch, TensorFlow alike: the float32 rounding of the result; updates reach 4.5e-3);
#: loss relative gap at most 1.0e-7. Tolerances: a few times those.
WEIGHT_ATOL = 2e-7
LOSS_RTOL = 5e-7


def _params(model) -> list[np.ndarray]:
    return reference.weights_of(model).params


def test_train_on_batch_matches_the_numpy_reference(small) -> None:
    x, y = small.features()[:256].astype(np.float32), small.labels()[:256]
    case = adam_step_case(small.features(), x, y)
    logs = case.model.train_on_batch(x, y, return_dict=True)
    after = _params(case.model)
    print(f"{keras.backend.backend()}: weight gap {largest_gap(after, case.after):.2e}, "
          f"loss {logs['loss']!r} vs {case.loss!r}")  # fmt: skip
    assert logs["loss"] == pytest.approx(case.loss, rel=LOSS_RTOL)
    for got, expected in zip(after, case.after, strict=True):
        np.testing.assert_allclose(got, expected, rtol=0, atol=WEIGHT_ATOL)
    assert set(logs) == {"loss"}  # the AUC monitors are for evaluate


def test_fit_without_compile_uses_the_model_defaults(small) -> None:
    """Adam at 1e-3 on the class-weighted BCE with the model's class weights."""
    x, y = small.features()[:300].astype(np.float32), small.labels()[:300]
    model = make_model(small.features(), class_weight=(0.5, 4.0), seed=3)
    before = reference.weights_of(model)
    loss, gradients = reference.loss_and_gradients(before, x, y, 0.5, 4.0)
    fresh = reference.AdamState(
        iterations=0, m=[np.zeros_like(p) for p in before.params],
        v=[np.zeros_like(p) for p in before.params],
    )  # fmt: skip
    expected, _ = reference.adam_step(before.params, gradients, fresh, 1e-3)
    history = model.fit(x, y, batch_size=len(y), epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(loss, rel=LOSS_RTOL)
    # A fresh Adam step is lr * g / (|g| + 1e-7): where |g| is near 1e-7 it turns on
    # the gradient's float32 rounding (torch: one weight of 512 off by 2.9e-7).
    for got, want in zip(_params(model), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_a_user_s_loss_and_metrics_are_what_fit_uses_and_reports(small) -> None:
    x, y = small.features()[:512].astype(np.float32), small.labels()[:512]
    model = make_model(small.features(), class_weight=(1.0, 9.0), seed=1)
    start = reference.weights_of(model)

    def nothing(y_true, y_pred):  # a loss that is always 0: nothing to learn
        return keras.ops.mean(y_pred, axis=-1) * 0.0

    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=nothing, metrics=["accuracy"])
    history = model.fit(x, y, batch_size=128, epochs=2, shuffle=False, verbose=0).history
    for got, want in zip(_params(model), start.params, strict=True):
        np.testing.assert_array_equal(got, want)
    assert history["loss"] == [0.0, 0.0]
    accuracy = np.mean((reference.probabilities(reference.weights_of(model), x) > 0.5) == y)
    assert history["accuracy"][-1] == pytest.approx(accuracy, abs=1e-6)

    # Keras's plain BCE on the probabilities, not the model's class-weighted default
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss=keras.losses.BinaryCrossentropy())
    logs = model.train_on_batch(x, y, return_dict=True)
    weights = start  # unchanged so far
    plain, gradients = reference.loss_and_gradients(weights, x, y, 1.0, 1.0)
    assert logs["loss"] == pytest.approx(plain, rel=1e-5)
    assert abs(plain - reference.weighted_bce(y, reference.logits(weights, x), 1.0, 9.0)) > 0.1
    for got, before, gradient in zip(_params(model), start.params, gradients, strict=True):
        np.testing.assert_allclose(got, before - gradient, rtol=0, atol=2e-6)


def test_a_model_compiled_with_many_steps_per_call_runs_on_every_backend(small) -> None:
    model = make_model(small.features())
    model.compile(steps_per_execution=64)
    assert 1 <= model.steps_per_execution <= 64
    x = small.features()[:100].astype(np.float32)
    np.testing.assert_allclose(
        model.predict(x, verbose=0).ravel(),
        reference.probabilities(reference.weights_of(model), x),
        atol=1e-6,
    )
