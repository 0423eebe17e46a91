"""TensorFlow on several processes (hosts): ``tf.distribute.MultiWorkerMirroredStrategy``
described by ``TF_CONFIG``, one replica per worker, under Keras's own ``fit``.

A process joins a group when ``TF_CONFIG`` lists at least two workers
(``{"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type":
"worker", "index": i}}``); :func:`join` creates the strategy, which must happen
before TensorFlow runs anything (``train`` calls it first). Worker 0 is the
chief: it alone writes checkpoints, the run folder and the report.

Each worker feeds its part of every global batch as JAX's processes do (its
slice of each padded global batch, or its own files' local batches:
:mod:`fraudkeras.training.shards`), through
``strategy.distribute_datasets_from_function`` (:func:`worker_dataset`): one
input pipeline per worker, so TensorFlow neither shards nor re-batches it.
The train step weighs rows by the batch's 0/1 mask and divides the row sum by
the all-reduced count of real rows
(:mod:`fraudkeras.modeling.train_steps.tensorflow_steps`).

Two Keras 3.15 problems are worked around: its symbolic build before ``fit``
averages a batch across replicas and fails under this strategy
(``FraudMLP._maybe_symbolic_build`` skips it, as under ``MirroredStrategy``),
and it reduces a multi-worker step's logs with ``reduce("MEAN", axis=0)``,
which fails for scalars (keras-team/keras#20585), so the train step returns
each log as a one-element vector there.
"""

from __future__ import annotations

import json
import os
from typing import Any

import keras
import numpy as np

from fraudkeras._core.errors import ParameterError
from fraudkeras._core.quiet import c_output_silenced
from fraudkeras.training.multihost import Group

_GROUP: dict[str, Any] = {}  # "strategy" and "group", once joined


def environment_workers() -> tuple[int, int] | None:
    """``(worker index, workers)`` from ``TF_CONFIG`` under TensorFlow, or None
    when it describes no group of several workers."""
    text = os.environ.get("TF_CONFIG")
    if keras.backend.backend() != "tensorflow" or not text:
        return None
    try:
        config = json.loads(text)
        workers = list(config["cluster"]["worker"])
        task = config["task"]
        kind, index = str(task["type"]), int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ParameterError(f"TF_CONFIG is not a worker cluster: {error!r}") from None
    if set(config["cluster"]) != {"worker"} or kind != "worker":
        raise ParameterError("TF_CONFIG: only a cluster of workers is supported (no chief or ps)")
    if not 0 <= index < len(workers):
        raise ParameterError(f"TF_CONFIG: worker {index} is not in a cluster of {len(workers)}")
    return (index, len(workers)) if len(workers) > 1 else None


def join() -> Group | None:
    """Join the group ``TF_CONFIG`` describes (once per process); None when none."""
    workers = environment_workers()
    if workers is None:
        return None
    if "group" not in _GROUP:
        import tensorflow as tf

        index, count = workers
        with c_output_silenced():  # its gRPC server and coordination service log lines
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        if strategy.num_replicas_in_sync != count:  # a worker with several GPUs
            raise ParameterError(
                f"TF_CONFIG: {count} workers make {strategy.num_replicas_in_sync} replicas; "
                "one device per worker is supported (set CUDA_VISIBLE_DEVICES to one GPU)"
            )
        _GROUP["strategy"], _GROUP["group"] = strategy, Group(index, count, 1, count)
    group: Group = _GROUP["group"]
    return group


def current() -> Group | None:
    """The group this process has joined, if any."""
    return _GROUP.get("group") if keras.backend.backend() == "tensorflow" else None


def strategy() -> Any:
    """The group's ``MultiWorkerMirroredStrategy`` (after :func:`join`)."""
    return _GROUP["strategy"]


def largest(value: int) -> int:
    """The largest ``value`` over the workers (a SUM all-reduce of one-hot
    vectors: the strategy reduces by SUM or MEAN only)."""
    import tensorflow as tf

    group: Group = _GROUP["group"]
    mine = np.zeros(group.processes, np.int64)
    mine[group.process] = value

    @tf.function  # the strategy warns when run eagerly
    def gather() -> Any:
        values = strategy().run(lambda: tf.constant(mine))
        return strategy().reduce(tf.distribute.ReduceOp.SUM, values, axis=None)

    return int(np.max(gather().numpy()))


def worker_dataset(batches: Any) -> Any:
    """``batches`` (``(x, y, mask)`` local batches, ``x`` a dict of float32 rows)
    as each worker's own input pipeline: a distributed dataset that ``fit``
    takes as it is. Each epoch re-reads ``batches`` in order."""
    import tensorflow as tf

    x, y, _ = batches[0]
    spec = (
        {key: tf.TensorSpec([None, value.shape[1]], tf.float32) for key, value in x.items()},
        tf.TensorSpec([None], tf.as_dtype(np.asarray(y).dtype)),
        tf.TensorSpec([None], tf.float32),
    )

    def generate() -> Any:
        for index in range(len(batches)):
            yield batches[index]

    def pipeline(context: Any) -> Any:
        dataset = tf.data.Dataset.from_generator(generate, output_signature=spec)
        return dataset.apply(tf.data.experimental.assert_cardinality(len(batches)))

    return strategy().distribute_datasets_from_function(pipeline)
