"""How many devices a run trains on (``fraudkeras train --devices N``), checked and
prepared before the frameworks start.

Each engine learns its device count at start-up: JAX reads ``XLA_FLAGS`` when it
is imported, TensorFlow fixes its logical devices when its runtime initialises
(at its first op). :func:`prepare_devices` therefore runs before either (the
CLI calls it right after choosing the backend); the training code itself only
checks (:meth:`fraudkeras.backends.Backend.check_devices`).
"""

from __future__ import annotations

import os
import re
import sys

from fraudkeras._core.errors import ParameterError

#: The XLA flag that splits the host CPU into several JAX devices.
XLA_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def check_device_count(devices: int) -> None:
    """Refuse a device count that is not a whole number from 1 (every backend)."""
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ParameterError(f"devices must be a positive integer, got {devices!r}")


def prepare_devices(backend: str, devices: int) -> None:
    """Check ``devices`` and, where the engine needs it before it starts, give the
    host CPU that many devices (when no accelerator provides them; torch's worker
    processes need nothing here):

    - JAX: add ``--xla_force_host_platform_device_count=N`` to ``XLA_FLAGS`` unless
      it names a count already; only before JAX is imported.
    - TensorFlow: split the CPU into N logical devices; only before its runtime
      initialises.

    Where it is too late, nothing happens here: training raises a ParameterError
    that says what to do when it finds fewer devices than ``devices``.
    """
    check_device_count(devices)
    if devices == 1:
        return
    if backend == "jax" and "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if not re.search(rf"{XLA_DEVICE_COUNT_FLAG}\b", flags):
            os.environ["XLA_FLAGS"] = f"{flags} {XLA_DEVICE_COUNT_FLAG}={devices}".strip()
    if backend == "tensorflow":
        split_tensorflow_cpu(devices)


def split_tensorflow_cpu(devices: int) -> bool:
    """Give TensorFlow ``devices`` logical CPU devices unless it has that many GPUs or
    has them already; False when its runtime started before with fewer."""
    import tensorflow as tf

    if len(tf.config.list_physical_devices("GPU")) >= devices:
        return True
    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(cpu)
    if configured is not None and len(configured) >= devices:
        return True
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
        )
    except RuntimeError:  # "Virtual devices cannot be modified after being initialized"
        return False
    return True
