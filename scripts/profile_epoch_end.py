"""What ``train()`` does after every epoch that ``FraudMLP.fit`` alone does not, part
by part, in ms, on the active Keras backend (``KERAS_BACKEND``).

scripts/bench_training.py compares whole epochs (``train-*`` against ``fit-*``);
on this shared 2-core machine their difference drifts by more than the parts
themselves, so this times each part many times, interleaved, on a model trained
for one epoch on the full table: validation (:class:`Validation`: forward pass
and loss, probabilities, AUCs, with scikit-learn's AUCs for reference), the
best weights on an improvement and the checkpoint.

    KERAS_BACKEND=jax python scripts/profile_epoch_end.py [--data PATH] [--repeats 40]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "creditcard.parquet"


def parts(data: str, folder: Path) -> dict[str, Callable[[], Any]]:
    """Each part of the epoch's end as a function of nothing, on the full table."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from fraudkeras.data.class_weights import class_weights
    from fraudkeras.data.splits import split
    from fraudkeras.data.tables import load_transactions
    from fraudkeras.metrics.ranking import average_precision_roc_auc
    from fraudkeras.modeling.model import FraudMLP, labelled_logits, probability_of
    from fraudkeras.modeling.seeding import seed_everything
    from fraudkeras.runs import checkpoint
    from fraudkeras.runs.config import TrainConfig
    from fraudkeras.training.building import compile_model
    from fraudkeras.training.epochs import fit_epochs, training_batches
    from fraudkeras.training.validation import Validation

    table = split(load_transactions(data), "stratified", 42)  # train()'s default split
    weights = class_weights(table.train.y, "balanced")
    config = TrainConfig(epochs=1)
    seed_everything(config.seed)
    model = FraudMLP(class_weight=(weights.normal, weights.fraud), features=config.features)
    model.adapt(table.train.x)
    compile_model(model, config.learning_rate, math.ceil(len(table.train.y) / config.batch_size))
    fit_epochs(model, training_batches(model, table, config), config, 0, [], verbose=0)
    validation = Validation(model, table.validation.x, table.validation.y)
    labels = validation.labels
    logits = labelled_logits(model, validation.rows)[0]
    probabilities = probability_of(logits)
    state, best = checkpoint.TrainingState(), model.get_weights()
    return {
        "forward pass and loss": lambda: labelled_logits(model, validation.rows),
        "probabilities": lambda: probability_of(logits),
        "AP and ROC-AUC": lambda: average_precision_roc_auc(labels, probabilities),
        "(scikit-learn's AP and ROC-AUC)": lambda: (
            average_precision_score(labels, probabilities),
            roc_auc_score(labels, probabilities),
        ),
        "Validation callback, all of it": lambda: validation.on_epoch_end(0, {}),
        "get_weights (on an improvement)": model.get_weights,
        "checkpoint.save": lambda: checkpoint.save(folder / "run.partial", model, state, {}, best),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        functions = parts(args.data, Path(folder))
        times: dict[str, list[float]] = {name: [] for name in functions}
        for function in functions.values():
            function()  # compile
        for _ in range(args.repeats):  # interleaved: the machine's drift hits every part alike
            for name, function in functions.items():
                start = time.perf_counter()
                function()
                times[name].append(time.perf_counter() - start)
    print("| part | median ms | min ms |\n|---|---:|---:|")
    for name, seconds in times.items():
        print(f"| {name} | {1e3 * statistics.median(seconds):.2f} | {1e3 * min(seconds):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
