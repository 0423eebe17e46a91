"""Data-parallel training on several devices of one host (``train(devices=N)``,
``fraudkeras train --devices N``): each global batch (the same ``batch_size``
rows, in the same order as on one device) is split across N devices, and the
result equals one device's within float rounding.

One context manager per engine, picked by backend, wraps building, compiling
and fitting the model:

- JAX: ``keras.distribution.DataParallel`` over N devices (variables replicated,
  batches sharded on their first axis; Keras jits our stateless step with the
  variables' shardings). It splits a batch into equal slices only, so batches
  arrive padded to a multiple of N rows with a mask (``Placement.pad_to``,
  :class:`fraudkeras.data.batches.PaddedBatches`).
- TensorFlow: ``tf.distribute.MirroredStrategy`` over N GPUs, else N logical CPU
  devices; the model is built and compiled in its scope, and each replica's loss
  is its share of the global batch's mean
  (:mod:`fraudkeras.modeling.train_steps.tensorflow_steps`). It runs one train
  step per compiled call: Keras 3.15's multi-step loop fails under
  ``MirroredStrategy`` ("You must feed a value for placeholder tensor",
  keras-team/keras#19246; a plain ``Sequential`` alike).
- JAX on several processes (:mod:`fraudkeras.training.multihost`): one
  ``DataParallel`` over every process's devices; each process feeds its own
  part of every batch (``auto_shard_dataset=False``).
- TensorFlow on several processes (:mod:`fraudkeras.training.tf_group`): the
  ``MultiWorkerMirroredStrategy`` of ``TF_CONFIG``; each worker feeds its own
  part of every batch.
- torch: nothing here; its worker processes split the batches
  (:mod:`fraudkeras.training.torch_workers`), and in each of them this context
  only records the group's size.

Device counts are fixed when the engines start: see
:func:`fraudkeras._core.devices.prepare_devices`, which the CLI calls first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras

from fraudkeras._core.devices import XLA_DEVICE_COUNT_FLAG, check_device_count, split_tensorflow_cpu
from fraudkeras._core.errors import ParameterError
from fraudkeras.training import multihost, tf_group


@dataclass(frozen=True)
class Placement:
    """How a run's batches are placed: on ``devices`` devices, padded to a multiple
    of ``pad_to`` rows (1: not padded)."""

    devices: int = 1
    pad_to: int = 1
    #: JAX on several processes (:mod:`fraudkeras.training.multihost`): how many,
    #: and which one this is; each feeds its part of every global batch
    processes: int = 1
    process: int = 0


def require_devices(devices: int) -> list[Any]:
    """The ``devices`` devices the active backend would train on; a ParameterError
    (saying how to get them) when it cannot. ``train`` asks before loading data."""
    backend = keras.backend.backend()
    check_device_count(devices)
    if devices == 1 or backend == "torch" or (multihost.current() or tf_group.current()):
        return []
    return _jax_devices(devices) if backend == "jax" else _tensorflow_devices(devices)


@contextlib.contextmanager
def data_parallel(devices: int) -> Iterator[Placement]:
    """Train on ``devices`` devices of the active backend inside this context;
    1 changes nothing."""
    group = multihost.current()
    if group is not None:  # every process's devices, whatever ``devices`` says
        with _jax_data_parallel(keras.distribution.list_devices(), sharded=True):
            yield Placement(group.devices, group.devices, group.processes, group.process)
        return
    workers = tf_group.current()
    if workers is not None:  # one replica per worker; each feeds its part of a batch
        with tf_group.strategy().scope():
            yield Placement(workers.devices, workers.devices, workers.processes, workers.process)
        return
    chosen = require_devices(devices)
    if devices == 1:
        yield Placement()
    elif keras.backend.backend() == "torch":
        yield Placement(devices)
    elif keras.backend.backend() == "jax":
        with _jax_data_parallel(chosen):
            yield Placement(devices, pad_to=devices)
    else:
        with _tensorflow_mirrored(chosen):
            yield Placement(devices)


def _jax_devices(devices: int) -> list[Any]:
    available: list[Any] = keras.distribution.list_devices()
    if len(available) < devices:
        raise ParameterError(
            f"devices {devices}: JAX has {len(available)} device(s); on CPU, set "
            f"XLA_FLAGS={XLA_DEVICE_COUNT_FLAG}={devices} before jax is imported "
            "(fraudkeras train --devices does it itself, unless XLA_FLAGS names a count)"
        )
    return available[:devices]


@contextlib.contextmanager
def _jax_data_parallel(devices: list[Any], sharded: bool = False) -> Iterator[None]:
    """``sharded``: each process feeds its own part of every batch already (Keras
    would otherwise insist on a ``tf.data.Dataset`` to shard itself)."""
    previous = keras.distribution.distribution()
    parallel = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=not sharded)
    keras.distribution.set_distribution(parallel)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def _tensorflow_devices(devices: int) -> list[Any]:
    import tensorflow as tf

    split_tensorflow_cpu(devices)
    gpus = tf.config.list_logical_devices("GPU")
    chosen = gpus if len(gpus) >= devices else tf.config.list_logical_devices("CPU")
    if len(chosen) < devices:
        raise ParameterError(
            f"devices {devices}: TensorFlow has {len(chosen)} device(s), and its CPU can "
            "only be split before TensorFlow runs anything; call "
            f"fraudkeras._core.devices.prepare_devices('tensorflow', {devices}) first "
            "(fraudkeras train --devices does it itself)"
        )
    return [device.name for device in chosen[:devices]]


@contextlib.contextmanager
def _tensorflow_mirrored(devices: list[str]) -> Iterator[None]:
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        yield


def steps_per_execution_limit(wanted: int) -> int:
    """``wanted``, or 1 inside a TensorFlow strategy of several replicas, where
    Keras's multi-step loop fails (see above)."""
    if keras.backend.backend() != "tensorflow":
        return wanted
    import tensorflow as tf

    return 1 if tf.distribute.get_strategy().num_replicas_in_sync > 1 else wanted
