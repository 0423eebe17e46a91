"""``--schedule cosine`` and ``--ema``: Keras's own schedule and weight averaging,
checked against a hand computation and against scikit-learn on the saved model."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from fraudkeras.modeling.model import fraud_probabilities
from fraudkeras.training.train import train

RUN = {"epochs": 3, "patience": 3, "batch_size": 256, "seed": 3, "report": False}


def test_cosine_schedule_decays_to_zero_over_the_run(small) -> None:
    trained = train(small, schedule="cosine", learning_rate=2e-3, **RUN)
    steps = math.ceil(len(trained.split.train.y) / 256) * 3
    optimizer = trained.model.optimizer
    done = int(keras.ops.convert_to_numpy(optimizer.iterations))
    assert done == steps  # three whole epochs: patience 3 never stops early
    expected = 2e-3 * 0.5 * (1 + math.cos(math.pi * done / steps))  # Keras's CosineDecay
    rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    assert rate == pytest.approx(expected, abs=1e-9)  # 0 at the end, 2e-3 if constant


def test_averaged_weights_are_validated_and_saved(small) -> None:
    """The best epoch's validation PR-AUC (history) is the saved model's own, as
    scikit-learn computes it: validation and the kept weights are the averages."""
    averaged = train(small, ema=0.9, **RUN)
    plain = train(small, ema=0.0, **RUN)
    steps = math.ceil(len(averaged.split.train.y) / 256)  # 9: the momentum is lowered
    assert averaged.model.optimizer.ema_momentum == pytest.approx(1 - 1 / (0.2 * steps))
    assert not plain.model.optimizer.use_ema
    for run in (averaged, plain):
        validation = run.split.validation
        p = fraud_probabilities(run.model, validation.x)
        best = max(run.history["val_pr_auc"])
        assert average_precision_score(validation.y, p) == pytest.approx(best, abs=2e-4)
    moved = [
        np.max(np.abs(np.asarray(a) - np.asarray(b)))
        for a, b in zip(averaged.model.get_weights(), plain.model.get_weights(), strict=True)
    ]
    assert max(moved) > 1e-3  # the average is not the last step's weights
