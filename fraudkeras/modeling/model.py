"""``FraudMLP``: the detector, defined once for every Keras backend."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops
from scipy.special import expit

from fraudkeras._core.errors import ModelFileError, first_line
from fraudkeras.backends import current
from fraudkeras.data.schema import N_FEATURES
from fraudkeras.modeling import features as transforms
from fraudkeras.modeling.architecture import DEFAULT_HIDDEN_UNITS, SINGLE_MEMBER, check_levers
from fraudkeras.modeling.calibration import LogitCalibration
from fraudkeras.modeling.embeddings import PeriodicEmbedding
from fraudkeras.modeling.ensemble import MemberInputs, MemberLogits
from fraudkeras.modeling.loss import ClassWeightedBinaryCrossentropy, weighted_bce_rows
from fraudkeras.modeling.portable import PortableModel

PREDICT_BATCH_SIZE = 8192
#: rows per call in :meth:`FraudMLP.prepare` and :func:`labelled_logits`: torch's eager
#: ops took 0.56 s for the full table's training rows in batches of 8,192, 0.25 s in
#: batches of 65,536
PREPARE_BATCH_SIZE = 65_536
#: the notebook's optimizer, and what ``compile`` uses when it names none
DEFAULT_LEARNING_RATE = 1e-3
_BACKEND = current()


@keras.saving.register_keras_serializable(package="fraudkeras")
class FraudMLP(PortableModel):
    """Raw transaction (30 features) -> fraud probability.

    The input transform (:mod:`fraudkeras.modeling.features`, named by
    ``features``) and a ``Normalization`` adapted on its training outputs come
    first, so every saved or exported model takes raw transactions. A model
    saved before the transform existed has no ``features`` in its config and
    loads as ``raw``: the old behaviour, unchanged.

    Training is Keras's: ``compile`` then ``fit``. What ``compile`` leaves out
    is the model's default: Adam at 1e-3 and the class-weighted binary
    cross-entropy of :mod:`fraudkeras.modeling.loss` with the model's class
    weights (part of its config); ``fit`` or ``evaluate`` before any ``compile``
    compiles with those. The step (:mod:`fraudkeras.backends`) runs ``call``, the
    compiled loss through ``compute_loss``, ``optimizer.apply`` and the compiled
    metrics on every backend. ``evaluate`` also reports PR-AUC and ROC-AUC
    (:attr:`monitors`), which ``fit`` does not update.

    ``calibration=True`` adds a :class:`LogitCalibration` after the logit layer:
    identity while the model trains, set after training to a map fitted on the
    validation split, so every artifact outputs calibrated probabilities. A model
    saved before it existed has no ``calibration`` in its config and loads
    without it: the old behaviour, unchanged.

    Two levers, both off by default (and for models saved before they existed):
    ``embeddings="periodic"`` embeds each scaled feature periodically
    (:class:`~fraudkeras.modeling.embeddings.PeriodicEmbedding`) before the
    hidden layers; ``ensemble=K`` (K > 1) runs K members through shared hidden
    layers and averages their logits (:mod:`fraudkeras.modeling.ensemble`).
    Both sit after :meth:`network_inputs`, so :meth:`prepare` is unchanged.
    """

    def __init__(
        self,
        hidden_units: Sequence[int] = DEFAULT_HIDDEN_UNITS,
        class_weight: Sequence[float] = (1.0, 1.0),
        features: str = transforms.LEGACY_TRANSFORM,
        calibration: bool = True,
        embeddings: str = "none",
        ensemble: int = SINGLE_MEMBER,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "fraud_mlp")
        super().__init__(**kwargs)
        self.hidden_units = tuple(int(units) for units in hidden_units)
        normal_weight, fraud_weight = (float(w) for w in class_weight)
        self.class_weight = (normal_weight, fraud_weight)
        self.features = transforms.check_transform(features)
        self.feature_names = transforms.output_names(self.features)
        self.scaler = keras.layers.Normalization(axis=-1, name="scaler")
        check_levers(embeddings, ensemble)
        self.embeddings, self.ensemble = embeddings, ensemble
        self.embedding = PeriodicEmbedding() if embeddings == "periodic" else None
        self.member_inputs = MemberInputs(ensemble) if ensemble > 1 else None
        self.hidden = [
            keras.layers.Dense(
                units, activation="relu", kernel_initializer="he_normal", name=f"hidden_{i}"
            )
            for i, units in enumerate(self.hidden_units)
        ]
        self.logit = MemberLogits(ensemble) if ensemble > 1 else keras.layers.Dense(1, name="logit")
        self.calibration = LogitCalibration() if calibration else None
        self.pr_auc = keras.metrics.AUC(curve="PR", name="pr_auc")
        self.roc_auc = keras.metrics.AUC(curve="ROC", name="roc_auc")

    def adapt(self, features: np.ndarray) -> None:
        """Fit the built-in scaler on the transformed (training) features, in float64."""
        self.scaler.adapt(transforms.apply_numpy(features, self.features))
        self.build((None, N_FEATURES))

    def set_scaler(self, mean: np.ndarray, variance: np.ndarray) -> None:
        """Set the scaler to precomputed training statistics of the transformed
        features (population variance), as :meth:`adapt` would on those rows:
        streamed tables compute them in one float64 pass."""
        self.build((None, N_FEATURES))
        self.scaler.adapt_mean.assign(np.asarray(mean, dtype=np.float32))
        self.scaler.adapt_variance.assign(np.asarray(variance, dtype=np.float32))
        self.scaler.finalize_state()

    def build(self, input_shape: Any) -> None:
        shape = (*tuple(input_shape)[:-1], len(self.feature_names))
        if not self.scaler.built:
            self.scaler.build(shape)
        for lever in (self.embedding, self.member_inputs):
            if lever is not None:
                lever.build(shape)
                shape = lever.compute_output_shape(shape)
        for layer in self.hidden:
            layer.build(shape)
            shape = (*shape[:-1], layer.units)
        self.logit.build(shape)
        if self.calibration is not None and not self.calibration.built:
            self.calibration.build((shape[0], 1))
        self.built = True

    def call(self, inputs: Any, training: bool = False, return_logits: bool = False) -> Any:
        # Sublayers are called through ``.call``, not ``__call__``: they are built in
        # ``build`` and need none of its bookkeeping (masks, autocast, lazy build),
        # which on PyTorch cost ~0.5 ms of a ~3 ms train step (2.47 -> 2.00 s/epoch,
        # scripts/bench_training.py). The model itself is still called normally.
        h = self.network_inputs(inputs)
        if self.embedding is not None:
            h = self.embedding.call(h)
        if self.member_inputs is not None:  # (batch, members, width) from here to the logit
            h = self.member_inputs.call(h)
        for layer in self.hidden:
            h = layer.call(h)
        logits = self.logit.call(h)
        # the calibration map (identity until fitted) applies outside training only
        if self.calibration is not None and not training:
            logits = self.calibration.call(logits)
        return logits if return_logits else ops.sigmoid(logits)

    def network_inputs(self, inputs: Any) -> Any:
        """What the first dense layer sees: raw rows transformed and standardized,
        or rows :meth:`prepare` made once (``{PREPARED: rows}``) as they are."""
        if isinstance(inputs, dict):
            return inputs[transforms.PREPARED]
        return self.standardize(self.transform(inputs))

    def prepare(self, features: np.ndarray) -> np.ndarray:
        """:meth:`network_inputs` of a whole table, as float32 NumPy, computed once.

        The scaler does not change while the model trains, so the transform and
        scaling of the training rows are the same at every step; computed per
        batch they were ~20 % of a PyTorch step and ~15 small ops of every
        TensorFlow step (scripts/bench_training.py). Row by row, the result is
        what ``call`` computes (the same ``keras.ops``)."""
        prepare = _BACKEND.compiled(self, "prepare", FraudMLP.network_inputs)
        return in_batches(prepare, features, PREPARE_BATCH_SIZE, len(self.feature_names))

    def numpy_preparer(self) -> Callable[[np.ndarray], np.ndarray]:
        """:meth:`prepare` in NumPy float32, for streamed chunks: it runs in the
        data pipeline (on TensorFlow inside ``tf.data``), where a compiled backend
        function should not, and while ``fit`` runs (when JAX's trainer has taken the
        variables' values), so the scaling is read now. Equal to :meth:`prepare` up
        to float32 rounding (``Time`` and ``Amount`` are transformed in float64, then
        every column is scaled as :meth:`standardize` does)."""
        mean = keras.ops.convert_to_numpy(self.scaler.adapt_mean).astype(np.float32).reshape(-1)
        variance = keras.ops.convert_to_numpy(self.scaler.adapt_variance).astype(np.float32)
        std = np.maximum(np.sqrt(variance.reshape(-1)), np.float32(keras.config.epsilon()))
        scale = (np.float32(1.0) / std).astype(np.float32)
        offset, transform = mean * scale, self.features

        def prepare(features: np.ndarray) -> np.ndarray:
            x = np.asarray(features, dtype=np.float32)
            # only Time and Amount change: transform those two columns, keep V1-V28
            edges = transforms.apply_numpy(x[:, [0, -1]], transform).astype(np.float32)
            rows = np.concatenate([edges[:, :-1], x[:, 1:-1], edges[:, -1:]], axis=1)
            rows *= scale
            rows -= offset
            return rows

        return prepare

    def transform(self, inputs: Any) -> Any:
        """Raw transactions -> the scaler's inputs (``feature_names``), in ``keras.ops``."""
        return transforms.apply(inputs, self.features)

    def standardize(self, inputs: Any) -> Any:
        """The adapted scaling as ``x * scale + offset`` (equal to the Normalization
        layer's ``(x - mean) / std``). Exported graphs then hold ``scale`` and
        ``offset`` rather than the mean, and ``Time``'s mean (~94,800) would not fit
        a float16 LiteRT file (largest float16: 65,504)."""
        # The adapted variables, not the layer's cached ``mean``/``variance`` tensors:
        # traced exports (ONNX) capture variables as weights but cached tensors as
        # extra graph inputs.
        mean, variance = self.scaler.adapt_mean, self.scaler.adapt_variance
        std = ops.maximum(ops.sqrt(variance), keras.config.epsilon())
        scale = 1.0 / std
        return ops.cast(inputs, scale.dtype) * scale - mean * scale

    # -- training: Keras's compile and fit; the steps are in fraudkeras.backends --

    def compile(
        self,
        optimizer: Any = None,
        loss: Any = None,
        metrics: Any = None,
        **kwargs: Any,
    ) -> None:
        """``keras.Model.compile`` with the model's defaults for what it leaves
        out (see the class docstring). ``steps_per_execution`` is capped at what
        the backend's trainer accepts (torch: 1), so a model compiled with 64
        steps a call under JAX, saved and loaded under torch, still runs."""
        wanted = kwargs.pop("steps_per_execution", 1)
        if isinstance(wanted, int) and not isinstance(wanted, bool):  # else Keras refuses it
            wanted = _BACKEND.steps_per_execution(wanted)
        super().compile(
            optimizer=(
                keras.optimizers.Adam(DEFAULT_LEARNING_RATE) if optimizer is None else optimizer
            ),
            loss=self.default_loss() if loss is None else loss,
            metrics=metrics,
            steps_per_execution=wanted,
            **kwargs,
        )

    def default_loss(self) -> ClassWeightedBinaryCrossentropy:
        """The class-weighted BCE with this model's class weights."""
        return ClassWeightedBinaryCrossentropy(*self.class_weight)

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """Keras's ``compute_loss``, given the model's logits as ``y_pred`` (the
        steps compute them once): a loss that says ``from_logits`` gets them as
        they are, any other loss the probabilities ``call`` returns."""
        if not getattr(self.loss, "from_logits", False):
            y_pred = ops.sigmoid(y_pred)
        return super().compute_loss(x, y, y_pred, sample_weight, training)

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        """``keras.Model.fit``, compiled with the defaults if it was not, inside
        the backend's ``fit_context`` (on torch: one intra-op thread)."""
        if not self.compiled:
            self.compile()
        with _BACKEND.fit_context(self):
            return super().fit(*args, **kwargs)

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        """``keras.Model.evaluate``, compiled with the defaults if it was not."""
        if not self.compiled:
            self.compile()
        return super().evaluate(*args, **kwargs)

    def _maybe_symbolic_build(self, *args: Any, **kwargs: Any) -> None:
        """TensorFlow's trainer only (keras 3.15): under a ``tf.distribute`` strategy
        it first averages a batch's per-replica slices to build the model
        symbolically, which fails when the slices differ in size (an odd batch on
        two replicas; keras-team/keras#19246). A FraudMLP is built before it trains
        (``adapt``, ``set_scaler``); its optimizer is built here, and nothing else
        is needed. Without a strategy Keras's own (which does nothing) runs."""
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is not None and self.built and self.optimizer is not None:
            if not self.optimizer.built:
                with strategy.scope():
                    self.optimizer.build(self.trainable_variables)
            return
        super()._maybe_symbolic_build(*args, **kwargs)

    def train_step(self, *args: Any) -> Any:
        return _BACKEND.train_step(self, *args)

    def test_step(self, *args: Any) -> Any:
        return _BACKEND.test_step(self, *args)

    def row_losses(self, labels: Any, logits: Any) -> Any:
        """The default loss of every row (validation averages them over all its rows)."""
        normal_weight, fraud_weight = self.class_weight
        return weighted_bce_rows(
            labels, logits, normal_weight=normal_weight, fraud_weight=fraud_weight
        )

    @property
    def loss_tracker(self) -> keras.metrics.Metric:
        """Keras's own mean of the loss (``loss`` in the logs), once compiled."""
        return next(metric for metric in self.metrics if metric.name == "loss")

    @property
    def monitors(self) -> list[keras.metrics.Metric]:
        """PR-AUC and ROC-AUC: ``evaluate`` updates them, ``fit`` does not (an AUC
        update costs as much as the rest of a training step; ``train()`` validates
        each epoch with :class:`fraudkeras.training.validation.Validation`)."""
        return [self.pr_auc, self.roc_auc]

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(
            hidden_units=list(self.hidden_units),
            class_weight=list(self.class_weight),
            features=self.features,
            calibration=self.calibration is not None,
            embeddings=self.embeddings,
            ensemble=self.ensemble,
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FraudMLP:
        """A config saved before the calibration layer existed loads without it;
        one saved before the levers existed has neither (their defaults)."""
        return cls(**{"calibration": False, **config})


def load_model(path: str | Path) -> FraudMLP:
    """Load a ``.keras`` file saved by fraudkeras under any backend."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a .keras file (corrupt or truncated)")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # keras raises many kinds for a damaged archive
        reason = first_line(error)
        raise ModelFileError(f"{path}: cannot load model ({reason})") from error
    if not isinstance(model, FraudMLP):
        raise ModelFileError(f"{path}: holds a {type(model).__name__}, not a FraudMLP")
    return model


def fraud_probabilities(model: FraudMLP, features: np.ndarray) -> np.ndarray:
    """Fraud probabilities as a flat float64 array, from the model's logits.

    The sigmoid runs in float64: in float32 every logit above ~17 becomes exactly
    1.0, and those ties cost PR-AUC (0.0125 on the bundled sample's test split,
    where 15 transactions, 14 of them frauds, saturated).
    """
    logits = _BACKEND.compiled(model, "logits", _logits)
    return probability_of(in_batches(logits, features, PREDICT_BATCH_SIZE, 1).reshape(-1))


def labelled_logits(model: FraudMLP, labelled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The logits and weighted losses (:meth:`FraudMLP.row_losses`), flat float32,
    of rows :meth:`FraudMLP.prepare` made, each with its label as a last column.

    One compiled call per :data:`PREPARE_BATCH_SIZE` rows computes both: the full
    table's 42,721 validation rows took ~15 ms in six TensorFlow calls of 8,192
    rows, ~6 ms in one (JAX: ~6 and ~5 ms), and the loss as eager ops after them
    1-4 ms more, where in the same call it adds well under 1 ms."""
    function = _BACKEND.compiled(model, "labelled_logits", _labelled_logits)
    both = in_batches(function, labelled, PREPARE_BATCH_SIZE, 2)
    return both[:, 0], both[:, 1]


def _logits(model: FraudMLP, x: Any) -> Any:
    return model(x, return_logits=True)


def _labelled_logits(model: FraudMLP, labelled: Any) -> Any:
    logits = model({transforms.PREPARED: labelled[:, :-1]}, return_logits=True)
    losses = model.row_losses(labelled[:, -1], logits)
    return ops.concatenate([logits, ops.reshape(losses, (-1, 1))], axis=1)


def in_batches(function: Any, features: np.ndarray, size: int, width: int) -> np.ndarray:
    """``function`` over ``features`` (as float32) in batches of ``size`` rows, as
    float32 NumPy of ``width`` columns. A short last batch is padded with zero rows
    (their results dropped) to ``size``, or, when all of ``features`` is shorter
    than a batch, to a power of two of at least 256 rows: a compiled (jitted)
    function sees few shapes, however many sizes of input come (a streamed
    table's chunks: each new shape cost JAX ~0.1 s)."""
    x = np.asarray(features, dtype=np.float32)
    parts = []
    for start in range(0, len(x), size):
        batch = x[start : start + size]
        rows = len(batch)
        if 0 < rows < size:
            target = size if len(x) > size else min(size, 1 << max(8, (rows - 1).bit_length()))
            batch = np.concatenate([batch, np.zeros((target - rows, *x.shape[1:]), np.float32)])
        result = ops.convert_to_numpy(ops.stop_gradient(function(batch)))
        parts.append(np.asarray(result, dtype=np.float32)[:rows])
    return np.concatenate(parts) if parts else np.zeros((0, width), np.float32)


def probability_of(logits: np.ndarray) -> np.ndarray:
    """The fraud probability of logits, by a float64 sigmoid (see above)."""
    probabilities: np.ndarray = expit(np.asarray(logits, dtype=np.float64))
    return probabilities
