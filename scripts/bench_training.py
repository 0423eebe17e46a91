"""Training-speed benchmark: FraudMLP ``fit`` on each backend against hand-written
reference loops with the same architecture, batch size and optimizer.

References: raw JAX (``jax.jit`` + ``jax.value_and_grad`` as the notebook writes
it, with a hand-written Adam) and raw PyTorch (the notebook's loop with
``torch.optim.Adam``); raw TensorFlow (``tf.function`` + ``GradientTape``) is
shown for context. Every case runs in its own process on the full table
(stratified split, training rows, batch 256, Adam 1e-3), and reports the median
epoch time over the epochs after the first. Cases are interleaved over several
rounds (this machine's speed drifts by 10-20 % between minutes), and each case's
median is taken over all its rounds. Ratios compare each backend with the raw
loop of its own framework (tensorflow with the faster raw loop).

    python scripts/bench_training.py [--data PATH] [--epochs 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "creditcard.parquet"
CASES = ("raw-jax", "raw-torch", "raw-tensorflow", "keras-jax", "keras-torch", "keras-tensorflow")
TARGETS = {"keras-jax": ("raw-jax", 1.0), "keras-torch": ("raw-torch", 1.25)}
BATCH, LEARNING_RATE, HIDDEN = 256, 1e-3, (64, 32, 16)


def training_rows(data: str) -> tuple[np.ndarray, np.ndarray]:
    from fraudkeras.data.splits import split
    from fraudkeras.data.tables import load_transactions

    part = split(load_transactions(data), "stratified", 42).train
    return part.x, part.y.astype(np.float32)


def standardized(x: np.ndarray) -> np.ndarray:
    """What the notebook's StandardScaler did before its loops."""
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


def raw_jax(x: np.ndarray, y: np.ndarray, epochs: int) -> list[float]:
    import jax
    import jax.numpy as jnp

    x = standardized(x)
    sizes = (x.shape[1], *HIDDEN, 1)
    keys = jax.random.split(jax.random.PRNGKey(0), len(sizes) - 1)
    params = [
        (jax.random.normal(k, (a, b)) * jnp.sqrt(2.0 / a), jnp.zeros(b))
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]

    def loss_fn(params, xb, yb):
        h = xb
        for w, b in params[:-1]:
            h = jax.nn.relu(h @ w + b)
        logits = (h @ params[-1][0] + params[-1][1]).ravel()
        return jnp.mean(jnp.maximum(logits, 0) - logits * yb + jnp.log1p(jnp.exp(-jnp.abs(logits))))

    @jax.jit
    def step(params, m, v, t, xb, yb):
        loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
        m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
        v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
        scale = LEARNING_RATE * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        params = jax.tree.map(lambda p, m, v: p - scale * m / (jnp.sqrt(v) + 1e-7), params, m, v)
        return params, m, v, loss

    m = jax.tree.map(jnp.zeros_like, params)
    v = jax.tree.map(jnp.zeros_like, params)
    rng, times, t = np.random.default_rng(0), [], 0
    for _ in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(y))
        for i in range(0, len(y), BATCH):
            t += 1
            rows = order[i : i + BATCH]
            params, m, v, loss = step(params, m, v, t, x[rows], y[rows])
        loss.block_until_ready()
        times.append(time.perf_counter() - start)
    return times


def raw_torch(x: np.ndarray, y: np.ndarray, epochs: int) -> list[float]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers: list[nn.Module] = []
    sizes = (x.shape[1], *HIDDEN)
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.BCEWithLogitsLoss()
    data = torch.utils.data.TensorDataset(torch.from_numpy(standardized(x)), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(data, batch_size=BATCH, shuffle=True)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb).squeeze(1), yb)
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def raw_tensorflow(x: np.ndarray, y: np.ndarray, epochs: int) -> list[float]:
    import keras
    import tensorflow as tf

    x = standardized(x)
    tf.random.set_seed(0)
    sizes = (x.shape[1], *HIDDEN, 1)
    pairs = list(itertools.pairwise(sizes))
    kernels = [tf.Variable(tf.random.normal((a, b)) * (2 / a) ** 0.5) for a, b in pairs]
    biases = [tf.Variable(tf.zeros(b)) for _, b in pairs]
    variables = kernels + biases
    optimizer = keras.optimizers.Adam(LEARNING_RATE)

    @tf.function
    def step(xb, yb):
        with tf.GradientTape() as tape:
            h = xb
            for w, b in zip(kernels[:-1], biases[:-1], strict=True):
                h = tf.nn.relu(h @ w + b)
            logits = tf.squeeze(h @ kernels[-1] + biases[-1], 1)
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(yb, logits))
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    rng, times = np.random.default_rng(0), []
    for _ in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(y))
        for i in range(0, len(y), BATCH):
            loss = step(x[order[i : i + BATCH]], y[order[i : i + BATCH]])
        float(loss)
        times.append(time.perf_counter() - start)
    return times


def keras_fit(x: np.ndarray, y: np.ndarray, epochs: int) -> list[float]:
    import keras

    from fraudkeras.modeling.model import FraudMLP
    from fraudkeras.training.train import EpochTimer, compile_model

    keras.utils.set_random_seed(0)
    model = FraudMLP()
    model.adapt(x)
    compile_model(model, LEARNING_RATE, -(-len(y) // BATCH))
    timer = EpochTimer()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0, callbacks=[timer])
    return timer.seconds


def run_case(case: str, data: str, epochs: int) -> list[float]:
    """Run one case in a fresh process (one Keras backend per process)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if case.startswith("keras-"):
        env["KERAS_BACKEND"] = case.removeprefix("keras-")
    elif case == "raw-tensorflow":
        env["KERAS_BACKEND"] = "tensorflow"  # its Adam is Keras's, on TF variables
    command = [sys.executable, __file__, "--case", case, "--data", data, "--epochs", str(epochs)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{case} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=5, help="at least 4: the first is dropped")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        x, y = training_rows(args.data)
        runners = {"raw-jax": raw_jax, "raw-torch": raw_torch, "raw-tensorflow": raw_tensorflow}
        runner = runners.get(args.case, keras_fit)
        print(json.dumps(runner(x, y, args.epochs)))
        return 0

    after_first: dict[str, list[float]] = {case: [] for case in args.cases}
    for round_ in range(args.rounds):
        for case in args.cases:
            times = run_case(case, args.data, args.epochs)
            after_first[case] += times[1:]
            epochs = " ".join(f"{t:.3f}" for t in times)
            print(f"round {round_ + 1} {case:17s} epochs {epochs}", flush=True)
    medians = {case: statistics.median(times) for case, times in after_first.items()}
    raw = {k: v for k, v in medians.items() if k in ("raw-jax", "raw-torch")}
    print(
        f"\nmedian s/epoch after the first, {args.epochs} epochs x {args.rounds} interleaved "
        f"rounds, batch {BATCH}"
    )
    print("| case | s/epoch | reference | ratio | target |")
    print("|---|---:|---|---:|---:|")
    for case, seconds in medians.items():
        if case.startswith("raw-"):
            print(f"| {case} | {seconds:.3f} | | | |")
            continue
        reference, target = TARGETS.get(case, (min(raw, key=raw.get) if raw else "", 1.0))
        if reference not in raw:
            print(f"| {case} | {seconds:.3f} | (not run) | | |")
            continue
        ratio = seconds / raw[reference]
        met = "met" if ratio <= target else "missed"
        print(f"| {case} | {seconds:.3f} | {reference} | {ratio:.2f}x | <= {target:.2f}x ({met}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
