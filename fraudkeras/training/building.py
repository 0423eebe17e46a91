"""A run's model: seeded, its scaler adapted to the training rows, compiled."""

from __future__ import annotations

import math

import keras
import numpy as np

from fraudkeras.data.class_weights import ClassWeights
from fraudkeras.data.streaming import StreamSplit
from fraudkeras.modeling.model import FraudMLP
from fraudkeras.modeling.seeding import seed_everything
from fraudkeras.runs.config import TrainConfig

#: the averaged weights span at most this share of an epoch: momentum at most
#: ``1 - 1 / (share * steps_per_epoch)``. 0.99 spans ~100 steps, an eighth of an epoch
#: of the full table (779 steps); on a 3,000-row table (9 steps of 256) it would
#: average in the first epochs' nearly untrained weights
EMA_EPOCH_SHARE = 0.2
#: Train steps per compiled call where the backend allows several (JAX and
#: TensorFlow on one device; FraudMLP.compile caps it elsewhere).
STEPS_PER_EXECUTION = 64


def build_model(
    config: TrainConfig,
    weights: ClassWeights,
    train_x: np.ndarray,
    streamed: StreamSplit | None = None,
) -> FraudMLP:
    """A compiled FraudMLP, seeded and with its scaler adapted to the training
    rows (for a streamed table: to the moments of all its training rows)."""
    seed_everything(config.seed)
    model = FraudMLP(
        config.hidden_units,
        class_weight=(weights.normal, weights.fraud),
        features=config.features,
        embeddings=config.embeddings,
        ensemble=config.ensemble,
    )
    if streamed is not None and streamed.moments is not None:
        assert streamed.moments.mean is not None
        model.set_scaler(streamed.moments.mean, streamed.moments.variance)
        n_train = streamed.n_train
    else:
        model.adapt(train_x)
        n_train = len(train_x)
    compile_model(model, config, math.ceil(n_train / config.batch_size))
    return model


def compile_model(model: FraudMLP, config: TrainConfig, steps_per_epoch: int) -> None:
    """Adam, as the notebook, on the model's default loss (the class-weighted BCE),
    with the run's learning-rate schedule and weight averaging: Keras's own
    ``CosineDecay`` over every step of the run, and the optimizer's ``use_ema``.

    ``steps_per_execution`` runs 64 train steps per compiled call where the
    backend allows it, cutting the per-step dispatch cost (JAX 0.25 -> 0.12
    s/epoch, TensorFlow 0.99 -> 0.33 s on the full table;
    scripts/bench_training.py) without changing batches or results. Callbacks
    then see a batch end every 64 steps. It never exceeds an epoch, or the
    progress bar counts past the end.
    """
    rate: float | keras.optimizers.schedules.LearningRateSchedule = config.learning_rate
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.epochs * steps_per_epoch
        )
    momentum = ema_momentum(config.ema, steps_per_epoch)
    averaged = {"use_ema": True, "ema_momentum": momentum} if momentum > 0 else {}
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=rate, **averaged),
        steps_per_execution=max(1, min(STEPS_PER_EXECUTION, steps_per_epoch)),
    )


def ema_momentum(wanted: float, steps_per_epoch: int) -> float:
    """``wanted`` (``TrainConfig.ema``), lowered on short epochs so the average spans
    at most :data:`EMA_EPOCH_SHARE` of one; 0 (no averaging) below 5 steps an epoch."""
    return max(0.0, min(wanted, 1.0 - 1.0 / (EMA_EPOCH_SHARE * steps_per_epoch)))
