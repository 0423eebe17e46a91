"""FraudMLP written again in float64 NumPy, as the independent reference for the
train-step, model and artifact tests: the forward pass (scaler, the optional
periodic embeddings and ensemble members, ReLU layers, logit), the class-weighted
BCE, its gradients by hand-written backprop (plain models), and one step of
Keras's Adam. Nothing here calls Keras or fraudkeras except
:func:`weights_of` and :func:`assign`, which only read or write variable values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

#: keras.config.epsilon(), the floor FraudMLP.standardize puts under the std
STD_FLOOR = 1e-7


@dataclass
class Weights:
    """A FraudMLP's numbers: the scaler's adapted mean and variance, then one
    (kernel, bias) pair per Dense layer, the logit layer last."""

    mean: np.ndarray
    variance: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    #: the calibration map after the logit, ``scale * logit + bias`` (identity if absent)
    calibration: tuple[float, float] = (1.0, 0.0)
    #: periodic embeddings: frequencies (f, k), kernel (f, 2k, d), bias (f, d); or None
    embedding: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    #: the ensemble members' input multipliers (members, width), or None (one member,
    #: whose logit layer's kernel then has one column; with members, one per member)
    members: np.ndarray | None = None

    @property
    def params(self) -> list[np.ndarray]:
        """The trainable tensors in ``model.trainable_variables`` order."""
        return [tensor for pair in self.layers for tensor in pair]

    def with_params(self, params: list[np.ndarray]) -> Weights:
        assert self.embedding is None and self.members is None, "plain models only"
        pairs = list(zip(params[0::2], params[1::2], strict=True))
        return Weights(self.mean, self.variance, pairs, self.calibration)


def known_weights(features: np.ndarray, hidden_units=(64, 32, 16), seed: int = 0) -> Weights:
    """Weights chosen here, not by Keras: the scaler from the features' float64
    mean and (population) variance, He-normal kernels and small nonzero biases
    drawn from a NumPy generator, all rounded to float32 as the model stores them."""
    rng = np.random.default_rng(seed)
    x = np.asarray(features, dtype=np.float64)
    sizes = [x.shape[1], *hidden_units, 1]
    layers = [
        (
            rng.normal(scale=np.sqrt(2 / n_in), size=(n_in, n_out)).astype(np.float32),
            rng.normal(scale=0.05, size=n_out).astype(np.float32),
        )
        for n_in, n_out in pairwise(sizes)
    ]
    return Weights(x.mean(axis=0).astype(np.float32), x.var(axis=0).astype(np.float32), layers)


def weights_of(model) -> Weights:
    """A FraudMLP's current values (read only; the arithmetic is all below)."""
    from keras import ops

    def value(variable) -> np.ndarray:
        return np.asarray(ops.convert_to_numpy(variable))

    layers = [(value(layer.kernel), value(layer.bias)) for layer in [*model.hidden, model.logit]]
    mean = value(model.scaler.adapt_mean).reshape(-1)
    variance = value(model.scaler.adapt_variance).reshape(-1)
    calibration = (1.0, 0.0)
    if getattr(model, "calibration", None) is not None:
        scale, bias = (
            float(value(v).reshape(-1)[0])
            for v in (model.calibration.scale, model.calibration.bias)
        )
        calibration = (scale, bias)
    embedding = getattr(model, "embedding", None)
    periodic = None
    if embedding is not None:
        periodic = (value(embedding.frequency), value(embedding.kernel), value(embedding.bias))
    member_inputs = getattr(model, "member_inputs", None)
    members = None if member_inputs is None else value(member_inputs.multiplier)
    return Weights(mean, variance, layers, calibration, periodic, members)


def assign(model, weights: Weights) -> None:
    """Write ``weights`` into a built FraudMLP."""
    model.scaler.adapt_mean.assign(weights.mean.reshape(model.scaler.adapt_mean.shape))
    model.scaler.adapt_variance.assign(weights.variance.reshape(model.scaler.adapt_variance.shape))
    for layer, (kernel, bias) in zip([*model.hidden, model.logit], weights.layers, strict=True):
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)


def forward(weights: Weights, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits (flat) and every layer's input, for :func:`loss_and_gradients`."""
    mean = weights.mean.astype(np.float64)
    std = np.maximum(np.sqrt(weights.variance.astype(np.float64)), STD_FLOOR)
    h = (np.asarray(x, dtype=np.float64) - mean) / std
    if weights.embedding is not None:
        h = periodic_embedding(weights.embedding, h)
    if weights.members is not None:  # rows x members x width: each member's own multiple
        h = h[:, None, :] * weights.members.astype(np.float64)[None, :, :]
    inputs = []
    for kernel, bias in weights.layers[:-1]:
        inputs.append(h)
        h = np.maximum(h @ kernel.astype(np.float64) + bias.astype(np.float64), 0.0)
    inputs.append(h)
    kernel, bias = (w.astype(np.float64) for w in weights.layers[-1])
    if weights.members is None:
        return (h @ kernel + bias).reshape(-1), inputs
    # member m's logit uses the logit kernel's column m; the output is their mean
    member_logits = np.stack(
        [h[:, m, :] @ kernel[:, m] + bias[m] for m in range(kernel.shape[1])], axis=1
    )
    return member_logits.mean(axis=1), inputs


def periodic_embedding(
    embedding: tuple[np.ndarray, np.ndarray, np.ndarray], h: np.ndarray
) -> np.ndarray:
    """Feature i of every row -> ReLU(W_i [sin(2 pi c_i x), cos(2 pi c_i x)] + b_i),
    the features' d-vectors side by side (feature 0's first), one feature at a time."""
    frequency, kernel, bias = (w.astype(np.float64) for w in embedding)
    parts = []
    for i in range(h.shape[1]):
        angles = 2 * np.pi * h[:, i : i + 1] * frequency[i][None, :]  # rows x k
        periodic = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)  # rows x 2k
        parts.append(np.maximum(periodic @ kernel[i] + bias[i], 0.0))
    return np.concatenate(parts, axis=1)


def logits(weights: Weights, x: np.ndarray) -> np.ndarray:
    return forward(weights, x)[0]


def calibrated_logits(weights: Weights, x: np.ndarray) -> np.ndarray:
    """The logits the model outputs outside training: the calibration map applied."""
    scale, bias = weights.calibration
    return scale * logits(weights, x) + bias


def probabilities(weights: Weights, x: np.ndarray) -> np.ndarray:
    """The model's output: the sigmoid of the calibrated logit."""
    z = calibrated_logits(weights, x)
    # the logistic function, evaluated where exp() cannot overflow
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def example_weights(y: np.ndarray, normal: float, fraud: float) -> np.ndarray:
    return np.where(np.asarray(y).reshape(-1) == 1, fraud, normal).astype(np.float64)


def weighted_bce(y: np.ndarray, z: np.ndarray, normal: float, fraud: float) -> float:
    """mean_i w_i * BCE(y_i, sigmoid(z_i)), with BCE from logits written as
    ``log(1 + e^z) - y z`` (stable: ``logaddexp``)."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    per_example = np.logaddexp(0.0, z) - y * z
    return float(np.mean(example_weights(y, normal, fraud) * per_example))


def loss_and_gradients(
    weights: Weights, x: np.ndarray, y: np.ndarray, normal: float, fraud: float
) -> tuple[float, list[np.ndarray]]:
    """The weighted BCE of one batch and its gradient with respect to every
    trainable tensor (``Weights.params`` order), by backpropagation in float64."""
    assert weights.embedding is None and weights.members is None, "plain models only"
    z, inputs = forward(weights, x)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    loss = weighted_bce(y, z, normal, fraud)
    sigmoid = 0.5 * (1 + np.tanh(0.5 * z))
    # d loss / d z_i = w_i (sigmoid(z_i) - y_i) / n
    delta = (example_weights(y, normal, fraud) * (sigmoid - y) / len(y)).reshape(-1, 1)
    gradients: list[np.ndarray] = []
    for index in reversed(range(len(weights.layers))):
        kernel = weights.layers[index][0].astype(np.float64)
        layer_input = inputs[index]
        gradients[:0] = [layer_input.T @ delta, delta.sum(axis=0)]
        if index > 0:  # through the previous layer's ReLU (its output is this input)
            delta = (delta @ kernel.T) * (layer_input > 0)
    return loss, gradients


@dataclass
class AdamState:
    """Keras Adam's slots: the step count and one (m, v) pair per variable."""

    iterations: int
    m: list[np.ndarray]
    v: list[np.ndarray]


def adam_step(
    params: list[np.ndarray],
    gradients: list[np.ndarray],
    state: AdamState,
    learning_rate: float,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
) -> tuple[list[np.ndarray], AdamState]:
    """One step of ``keras.optimizers.Adam`` (its defaults): bias correction
    folded into the step size, epsilon added to sqrt(v) (not to the corrected v)::

        t = iterations + 1
        m <- m + (g - m)(1 - beta_1);  v <- v + (g^2 - v)(1 - beta_2)
        w <- w - lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)
    """
    t = state.iterations + 1
    alpha = learning_rate * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    new_params, new_m, new_v = [], [], []
    for w, g, m, v in zip(params, gradients, state.m, state.v, strict=True):
        g = np.asarray(g, dtype=np.float64)
        m = m.astype(np.float64) + (g - m) * (1 - beta_1)
        v = v.astype(np.float64) + (g * g - v) * (1 - beta_2)
        new_params.append(w.astype(np.float64) - alpha * m / (np.sqrt(v) + epsilon))
        new_m.append(m)
        new_v.append(v)
    return new_params, AdamState(t, new_m, new_v)
