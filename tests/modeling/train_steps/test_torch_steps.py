"""The torch step: gradients by backward() into each variable's .grad, applied by
Adam in place, checked against the float64 NumPy reference of tests/numpy_reference.py."""

from __future__ import annotations

import numpy as np
import numpy_reference as reference
import pytest

from helpers import adam_step_case, largest_gap, make_model, only_backend

pytestmark = only_backend("torch")

#: Measured on CPU: max |weight - NumPy float64 weight| after the step 6.0e-8, which is
#: the float32 rounding of the result (updates reach 4.5e-3, and a 0.1% gradient error
#: moves a weight by 1.9e-6); max |.grad - NumPy gradient| 2.7e-6 (gradients reach 0.39);
#: loss relative gap 3e-9. Tolerances: a few times those.
WEIGHT_ATOL = 2e-7
GRAD_ATOL = 1e-5
LOSS_RTOL = 5e-7


def test_train_step_matches_the_numpy_reference(small) -> None:
    import keras

    from fraudkeras.modeling.train_steps import torch_steps

    x, y = small.features()[:256].astype(np.float32), small.labels()[:256]
    case = adam_step_case(small.features(), x, y)
    model = case.model
    logs = torch_steps.train_step(
        model, (keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y))
    )
    after = reference.weights_of(model).params
    layers = [*model.hidden, model.logit]
    grads = [v.value.grad.numpy() for layer in layers for v in (layer.kernel, layer.bias)]
    print(f"torch: weight gap {largest_gap(after, case.after):.2e}, grad gap "
          f"{largest_gap(grads, case.gradients):.2e}, loss {float(logs['loss'])!r} vs "
          f"{case.loss!r}")  # fmt: skip
    assert float(logs["loss"]) == pytest.approx(case.loss, rel=LOSS_RTOL)
    for got, expected in zip(grads, case.gradients, strict=True):  # backward() filled .grad
        np.testing.assert_allclose(got, expected, rtol=0, atol=GRAD_ATOL)
    for got, expected in zip(after, case.after, strict=True):  # and Adam applied it
        np.testing.assert_allclose(got, expected, rtol=0, atol=WEIGHT_ATOL)
    assert set(logs) == {"loss"}  # the AUC monitors run in test_step


def test_steps_module_matches_backend() -> None:
    from fraudkeras.modeling import model

    assert model._STEPS.__name__ == "fraudkeras.modeling.train_steps.torch_steps"


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
