"""Validation at the end of every epoch, computed here rather than by Keras's
``evaluate``.

Keras's validation re-created its data iterator every epoch and ran the AUC
metrics' updates and results batch by batch, eagerly on TensorFlow and torch:
on TensorFlow it cost 0.145 s of a 0.36 s epoch (``fitval-tensorflow`` against
``fit-tensorflow``, scripts/bench_training.py). Here the validation rows are
prepared once (``FraudMLP.prepare``) and each epoch runs one forward pass over
them; the loss is the training loss (``FraudMLP.weighted_loss``) over all rows,
and the AUCs are scikit-learn's, the same exact average precision and ROC-AUC
that the run reports for its test split (Keras's AUC metrics interpolate 200
thresholds).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from fraudkeras.metrics.classification import ranking_metrics
from fraudkeras.modeling.model import FraudMLP, prepared_logits, probability_of


class Validation(keras.callbacks.Callback):
    """Adds ``val_loss``, ``val_pr_auc`` and ``val_roc_auc`` to each epoch's logs.

    It runs before the callbacks that read them (early stopping, the progress
    bar, ``History``). A non-finite logit leaves them out, which training reports
    as divergence. With a single class in the validation rows the AUCs are
    undefined and recorded as 0.0, as Keras's AUC metrics report them.
    """

    def __init__(self, model: FraudMLP, x: np.ndarray, y: np.ndarray) -> None:
        super().__init__()
        self.fraud_model = model
        self.rows = model.prepare(x)
        self.labels = np.asarray(y)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        logits = prepared_logits(self.fraud_model, self.rows)
        if not np.all(np.isfinite(logits)):
            return
        loss = self.fraud_model.weighted_loss(self.labels, logits)
        ranks = ranking_metrics(self.labels, probability_of(logits))
        logs["val_loss"] = float(ops.convert_to_numpy(loss))
        logs["val_pr_auc"] = ranks["pr_auc"] or 0.0
        logs["val_roc_auc"] = ranks["roc_auc"] or 0.0
