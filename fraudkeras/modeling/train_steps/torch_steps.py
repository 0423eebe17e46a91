"""PyTorch: gradients with ``loss.backward()``, stateful metric updates.

Keras's torch trainer calls ``train_step`` once per batch in Python (it refuses
``steps_per_execution > 1``), so every microsecond of Python in the step counts:
through ``Layer.__call__``, ``keras.ops`` (dtype checks and ``convert_to_tensor``
on every argument), ``optimizer.apply`` and ``Mean.update_state`` the step cost
about 3x the notebook's plain PyTorch loop. The training step therefore runs the
same arithmetic as ``FraudMLP.call``, ``weighted_binary_crossentropy``, Keras's
torch ``Adam`` and ``Mean`` as direct torch calls, op for op, so that the
results are bit-identical (``tests/train_steps/test_torch_steps.py`` checks it).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import keras
import torch
import torch.nn.functional as tnn

from fraudkeras.modeling.features import PREPARED
from fraudkeras.modeling.train_steps.stateful import update_metrics

if TYPE_CHECKING:
    from fraudkeras.modeling.model import FraudMLP

_KERAS_TORCH_ADAM = type(keras.optimizers.Adam())  # the backend's class, not the public alias
_DIST = torch.distributed if torch.distributed.is_available() else None


#: Intra-op threads while training. The layers are at most 256 x 64: an op is over
#: before a second thread helps, and on a busy 2-core machine torch's OpenMP
#: threads wait on each other (measured: 1.0 ms/step on one thread, 3-6 ms on two,
#: at load 7; the notebook's loop alike). Inference keeps torch's setting.
TRAINING_THREADS = 1


def compiled(
    model: FraudMLP, key: str, function: Callable[[FraudMLP, Any], Any]
) -> Callable[[Any], Any]:
    """``function(model, batch)``, run eagerly: eager ops need no compiling here."""
    return lambda batch: function(model, batch)


@contextlib.contextmanager
def fit_context(model: FraudMLP) -> Iterator[None]:
    """Run ``fit`` on :data:`TRAINING_THREADS` intra-op threads, with the
    variables' tensors looked up once (:class:`StepTensors`), then restore."""
    previous = torch.get_num_threads()
    torch.set_num_threads(TRAINING_THREADS)
    _FITTING[model] = None
    try:
        yield
    finally:
        _FITTING.pop(model, None)
        torch.set_num_threads(previous)


class StepTensors:
    """The torch tensors behind the variables a step reads and updates.

    A Keras variable's ``.value`` checks the stateless scope, autocasting and the
    device on every read, ~1.5 us each; a step reads ~45 of them. Assignments
    (``assign``, ``load_weights``, ``set_weights``) copy into the same tensor, so
    during a ``fit`` they can be looked up once. Outside ``fit`` (a direct
    ``train_step`` call) they are looked up at every step.
    """

    def __init__(self, model: FraudMLP) -> None:
        self.variables = model.trainable_variables
        self.parameters = [variable.value for variable in self.variables]
        self.layers = [
            (layer.kernel.value, layer.bias.value) for layer in [*model.hidden, model.logit]
        ]
        mean, variance = model.scaler.adapt_mean.value, model.scaler.adapt_variance.value
        self.scale = 1.0 / torch.maximum(torch.sqrt(variance), _epsilon(variance))
        self.offset = mean * self.scale
        self.total, self.count = model.loss_tracker.total.value, model.loss_tracker.count.value
        optimizer = model.optimizer
        self.adam = plain_adam(optimizer)
        if self.adam:
            slots = [optimizer._get_variable_index(variable) for variable in self.variables]
            self.momentums = [optimizer._momentums[i].value for i in slots]
            self.velocities = [optimizer._velocities[i].value for i in slots]
            self.iterations = optimizer.iterations.value


#: models inside ``fit`` -> their tensors (built at the first step, once the
#: optimizer exists)
_FITTING: weakref.WeakKeyDictionary[FraudMLP, StepTensors | None] = weakref.WeakKeyDictionary()


def step_tensors(model: FraudMLP) -> StepTensors:
    if model not in _FITTING:
        return StepTensors(model)
    tensors = _FITTING[model]
    if tensors is None:
        tensors = _FITTING[model] = StepTensors(model)
    return tensors


def train_step(model: FraudMLP, data: Any) -> dict[str, Any]:
    if _DIST is not None and _DIST.is_initialized():  # --devices N: torch_parallel_steps
        from fraudkeras.modeling.train_steps import torch_parallel_steps

        return torch_parallel_steps.train_step(model, data)
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    tensors = step_tensors(model)
    for parameter in tensors.parameters:
        parameter.grad = None
    logits = forward_logits(model, x, tensors)
    loss = weighted_loss(model, y, logits)
    loss.backward()
    gradients = [parameter.grad for parameter in tensors.parameters]
    with torch.no_grad():
        if tensors.adam:
            adam_update(model.optimizer, tensors, gradients)
        else:
            model.optimizer.apply(gradients, tensors.variables)
        return {"loss": update_loss_tracker(tensors, loss.detach(), len(logits))}


def test_step(model: FraudMLP, data: Any) -> dict[str, Any]:
    """Validation batches: the same direct forward and loss as ``train_step``; the
    AUC monitors through their own ``update_state``."""
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    tensors = step_tensors(model)
    with torch.no_grad():
        logits = forward_logits(model, x, tensors)
        loss = weighted_loss(model, y, logits)
        logs = {"loss": update_loss_tracker(tensors, loss, len(logits))}
        others = [metric for metric in model.metrics if metric is not model.loss_tracker]
        return logs | update_metrics(model, others, loss, y, logits)


def forward_logits(model: FraudMLP, x: Any, tensors: StepTensors | None = None) -> torch.Tensor:
    """``FraudMLP.call(x, return_logits=True)`` as the same torch ops."""
    tensors = tensors or step_tensors(model)
    if isinstance(x, dict):  # rows prepared once (FraudMLP.prepare)
        h = torch.as_tensor(x[PREPARED])
    else:
        inputs = model.transform(torch.as_tensor(x).to(tensors.scale.dtype))  # keras.ops
        h = torch.as_tensor(inputs) * tensors.scale - tensors.offset
    for kernel, bias in tensors.layers[:-1]:
        h = torch.relu(torch.matmul(h, kernel) + bias)
    kernel, bias = tensors.layers[-1]
    return torch.matmul(h, kernel) + bias


def weighted_loss(model: FraudMLP, labels: Any, logits: torch.Tensor) -> torch.Tensor:
    """:func:`fraudkeras.modeling.loss.weighted_binary_crossentropy` as the same torch ops."""
    return torch.mean(weighted_terms(model, labels, logits))


def weighted_terms(model: FraudMLP, labels: Any, logits: torch.Tensor) -> torch.Tensor:
    """Each row's class-weighted binary cross-entropy (their mean is the loss)."""
    normal_weight, fraud_weight = model.class_weight
    y = torch.as_tensor(labels).reshape(-1).to(logits.dtype)
    z = logits.reshape(-1)
    per_example = tnn.binary_cross_entropy_with_logits(z, y, reduction="none")
    weights = y * fraud_weight + (1.0 - y) * normal_weight
    return weights * per_example


def plain_adam(optimizer: Any) -> bool:
    """Whether ``optimizer`` is Keras's Adam with none of the options (clipping,
    weight decay, EMA, loss scaling, accumulation, amsgrad) that its ``apply``
    would handle and :func:`adam_update` does not."""
    return (
        type(optimizer) is _KERAS_TORCH_ADAM
        and not optimizer.amsgrad
        and optimizer.clipnorm is None
        and optimizer.clipvalue is None
        and optimizer.global_clipnorm is None
        and optimizer.weight_decay is None
        and not optimizer.use_ema
        and optimizer.loss_scale_factor is None
        and not optimizer.gradient_accumulation_steps
        and optimizer.built
    )


def adam_update(optimizer: Any, tensors: StepTensors, gradients: list[torch.Tensor]) -> None:
    """One step of Keras's torch ``Adam._parallel_update_step`` (keras 3.15), fused
    ``_foreach`` ops in the same order, on the optimizer's own slot variables (so
    checkpoints and a later ``optimizer.apply`` see the same state)."""
    parameters, m_list, v_list = tensors.parameters, tensors.momentums, tensors.velocities
    dtype = parameters[0].dtype
    learning_rate = _tensor(optimizer.learning_rate).to(dtype)
    step = (tensors.iterations + 1).to(dtype)
    beta_1_power = torch.pow(torch.tensor(optimizer.beta_1, dtype=dtype), step)
    beta_2_power = torch.pow(torch.tensor(optimizer.beta_2, dtype=dtype), step)
    alpha = learning_rate * torch.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    torch._foreach_mul_(m_list, optimizer.beta_1)
    torch._foreach_add_(m_list, gradients, alpha=1 - optimizer.beta_1)
    torch._foreach_mul_(v_list, optimizer.beta_2)
    torch._foreach_add_(
        v_list, torch._foreach_mul(gradients, gradients), alpha=1 - optimizer.beta_2
    )
    torch._foreach_add_(
        parameters,
        torch._foreach_div(
            torch._foreach_mul(m_list, alpha),
            torch._foreach_add(torch._foreach_sqrt(v_list), optimizer.epsilon),
        ),
        alpha=-1,
    )
    tensors.iterations.add_(1)


def update_loss_tracker(tensors: StepTensors, loss: torch.Tensor, rows: int) -> Any:
    """``model.loss_tracker.update_state(loss, sample_weight=rows)`` and its ``result()``."""
    total, count = tensors.total, tensors.count
    weight = torch.tensor(rows, dtype=total.dtype)
    total.add_(loss.to(total.dtype) * weight)
    count.add_(weight)
    return torch.where(count == 0, torch.zeros_like(total), total / count)


def _tensor(value: Any) -> torch.Tensor:
    return value.value if isinstance(value, keras.Variable) else torch.as_tensor(value)


def _epsilon(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(keras.config.epsilon(), dtype=like.dtype)
