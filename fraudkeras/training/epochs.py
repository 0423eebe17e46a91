"""All of a run's epochs in one ``fit``, with the per-epoch work in a callback.

``fit`` once per epoch re-created Keras's data adapter and iterator every epoch
(on torch a ``DataLoader``, on TensorFlow a ``tf.data`` pipeline and the compiled
function's state); one ``fit`` over all epochs reads each epoch's seeded order
from :mod:`fraudkeras.data.batches` and leaves checkpoints and early stopping to
:class:`EpochEnd`, which runs after every other callback's ``on_epoch_end``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

from fraudkeras.data.batches import (
    EpochBatches,
    PaddedBatches,
    ProcessSlice,
    ShardBatches,
    TfEpochBatches,
    torch_loader,
)
from fraudkeras.data.splits import Split
from fraudkeras.data.stream_batches import StreamBatches, TfStreamBatches
from fraudkeras.data.streaming import StreamSplit
from fraudkeras.modeling.features import PREPARED
from fraudkeras.modeling.model import FraudMLP
from fraudkeras.runs.config import TrainConfig
from fraudkeras.training import tf_group
from fraudkeras.training.shards import Shard
from fraudkeras.training.validation import Validation


class EpochEnd(keras.callbacks.Callback):
    """Calls ``handle(epoch, logs)`` at the end of every epoch; stops ``fit`` when
    it returns True (early stopping)."""

    def __init__(self, handle: Callable[[int, dict[str, Any]], bool]) -> None:
        super().__init__()
        self.handle = handle

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.handle(epoch, dict(logs or {})):
            self.model.stop_training = True


def fit_epochs(
    model: FraudMLP,
    parts: Split,
    config: TrainConfig,
    first_epoch: int,
    callbacks: Sequence[keras.callbacks.Callback],
    verbose: int | str,
    validate: bool = True,
    streamed: StreamSplit | None = None,
    pad_to: int = 1,
    processes: tuple[int, int] = (0, 1),
    shard: Shard | None = None,
) -> None:
    """Train epochs ``first_epoch .. config.epochs - 1`` in one ``fit``; epoch
    ``e`` sees the rows in ``epoch_order(config.seed, e)``, as a resumed run does.
    ``validate=False`` (benchmarks) skips validation (:class:`Validation`, which
    adds ``val_loss``, ``val_pr_auc`` and ``val_roc_auc`` to each epoch's logs). With ``streamed``,
    the training rows stream from its table (:class:`StreamBatches`, on every
    backend), in an order that depends only on ``(config.seed, e)``. ``pad_to`` > 1
    (JAX on several devices, :mod:`fraudkeras.training.parallel`): every training
    batch comes padded to a multiple of it, with a mask (:class:`PaddedBatches`).
    ``processes``: ``(process, processes)`` of a JAX multi-process group
    (:mod:`fraudkeras.training.multihost`): this process feeds its slice of each
    padded global batch (:class:`ProcessSlice`). With ``shard`` (a process of a
    group reading its own files, :mod:`fraudkeras.training.shards`), its local
    batches of ``batch_size / processes`` of its own rows (:class:`ShardBatches`)."""
    y, size = parts.train.y, config.batch_size
    data: Any
    own: list[keras.callbacks.Callback]
    process, count = processes
    if shard is not None:
        local = ShardBatches(model.prepare(shard.x), shard.y, size // shard.processes,
                             config.seed, shard.process, shard.steps, key=PREPARED)  # fmt: skip
        data, own = local, [local.callback()]
    elif streamed is not None:
        # each chunk transformed and scaled once, in NumPy, as in-memory rows are
        stream = StreamBatches(streamed, size, config.seed, prepare=model.numpy_preparer(),
                               key=PREPARED)  # fmt: skip
        data, own = stream, [stream.callback()]
        if keras.backend.backend() == "tensorflow" and count == 1:
            streaming = TfStreamBatches(stream)
            data, own = streaming.dataset, [streaming.callback()]
    else:
        x = model.prepare(parts.train.x)  # transformed and scaled once, not at every step
        if keras.backend.backend() == "tensorflow" and count == 1:
            pipeline = TfEpochBatches(x, y, size, config.seed, key=PREPARED)
            data, own = pipeline.dataset, [pipeline.callback()]
        else:
            batches = EpochBatches(x, y, size, config.seed, key=PREPARED)
            own = [batches.callback()]
            data = torch_loader(batches) if keras.backend.backend() == "torch" else batches
    if validate:
        own.insert(0, Validation(model, parts.validation.x, parts.validation.y))
    if pad_to > 1 and shard is None:
        data = _local(PaddedBatches(data, pad_to), process, count)
    if tf_group.current() is not None:  # each worker's own input pipeline
        data = tf_group.worker_dataset(data)
    model.fit(
        data,
        shuffle=False,  # the order is the dataset's; Keras would shuffle whole batches
        initial_epoch=first_epoch,
        epochs=config.epochs,
        callbacks=[*own, *callbacks],
        verbose=verbose,
    )


def _local(batches: PaddedBatches, process: int, processes: int) -> Any:
    return batches if processes == 1 else ProcessSlice(batches, process, processes)
