"""Validation at the end of every epoch, computed here rather than by Keras's
``evaluate``.

Keras's validation re-created its data iterator every epoch and ran the AUC
metrics' updates and results batch by batch, eagerly on TensorFlow and torch:
on TensorFlow it cost 0.145 s of a 0.36 s epoch (``fitval-tensorflow`` against
``fit-tensorflow``, scripts/bench_training.py). Here the validation rows are
prepared once (``FraudMLP.prepare``), with their labels as a last column, and
each epoch runs one compiled call over them (:func:`labelled_logits`) for the
logits and the training loss (``FraudMLP.row_losses``, averaged over all rows).

The AUCs are the exact average precision and ROC-AUC that the run reports for
its test split (Keras's AUC metrics interpolate 200 thresholds), computed by
:func:`fraudkeras.metrics.ranking.average_precision_roc_auc` rather than
scikit-learn: the same definitions, within float rounding, in ~1.5 ms rather
than ~16 ms. scikit-learn's AUCs were most of the ~26 ms that ``train()``
added to a 0.126 s JAX epoch (``train-jax`` against ``fit-jax``), and the
forward pass in 8,192-row calls most of the rest on TensorFlow. The callback
took ~26 ms an epoch on JAX and ~45 ms on TensorFlow; it now takes ~8-10 ms and
~12 ms (scripts/profile_epoch_end.py times each part, on a busy machine).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from fraudkeras.metrics.ranking import average_precision_roc_auc
from fraudkeras.modeling.model import FraudMLP, labelled_logits, probability_of


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
        self.labels = np.asarray(y).reshape(-1)
        self.rows = np.column_stack([model.prepare(x), self.labels.astype(np.float32)])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        logits, losses = labelled_logits(self.fraud_model, self.rows)
        if not np.all(np.isfinite(logits)):
            return
        aucs = average_precision_roc_auc(self.labels, probability_of(logits))
        logs["val_loss"] = float(np.mean(losses, dtype=np.float64))
        logs["val_pr_auc"], logs["val_roc_auc"] = aucs or (0.0, 0.0)
