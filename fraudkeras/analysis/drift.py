"""Has new data moved away from what the model was trained on?

``train`` stores a reference in the run folder (:data:`REFERENCE_FILE`): for each
of the model's transformed inputs (what its scaler sees, so ``Time`` as time of
day) and for its training scores, the decile edges, the share of training rows
in each bin and the range. :func:`drift` bins a new table the same way and
reports, per feature and for the scores, the population stability index

    PSI = sum over bins (actual - expected) * ln(actual / expected)

(shares floored at :data:`SHARE_FLOOR`, so an empty bin does not make it
infinite), the share of rows outside the training range and a verdict: below
0.1 stable, up to 0.25 watch, above that shifted. No training data is needed.

NumPy only; Keras is imported (by :mod:`fraudkeras.modeling.model`) only to
score the new table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fraudkeras._core.errors import ModelFileError
from fraudkeras._core.files import read_json
from fraudkeras.data.schema import FEATURES, validate_frame
from fraudkeras.data.tables import read_table
from fraudkeras.modeling.features import apply_numpy, check_transform, output_names
from fraudkeras.runs import layout
from fraudkeras.runs.checksums import verified_copy

if TYPE_CHECKING:
    from fraudkeras.modeling.model import FraudMLP

REFERENCE_FILE, DRIFT_FILE, PLOT_FILE = "drift_reference.json", "drift.json", "drift.png"
N_BINS = 10
SHARE_FLOOR = 1e-4
WATCH, SHIFTED = 0.1, 0.25  # PSI from which a distribution is "watch" or "shifted"
SCORE = "score"


def bin_edges(values: np.ndarray, bins: int = N_BINS) -> np.ndarray:
    """Inner edges at the quantiles 1/bins .. (bins-1)/bins (repeated edges merged,
    as features with many ties, such as ``Amount``, have)."""
    quantiles = np.quantile(np.asarray(values, np.float64), np.arange(1, bins) / bins)
    return np.unique(quantiles)


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin ``(-inf, e1], (e1, e2], ..., (e_last, inf)``."""
    index = np.searchsorted(np.asarray(edges, np.float64), np.asarray(values, np.float64))
    counts = np.bincount(index, minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, np.float64), SHARE_FLOOR)
    a = np.maximum(np.asarray(actual, np.float64), SHARE_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def verdict(value: float) -> str:
    return "stable" if value < WATCH else "watch" if value <= SHIFTED else "shifted"


def describe(values: np.ndarray) -> dict[str, Any]:
    """One distribution's reference: bin edges, training shares, range."""
    edges = bin_edges(values)
    return {
        "edges": edges.tolist(),
        "shares": bin_shares(values, edges).tolist(),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


def build_reference(transformed: np.ndarray, scores: np.ndarray, transform: str) -> dict[str, Any]:
    """The reference ``train`` stores, from training rows already transformed."""
    names = output_names(transform)
    return {
        "transform": transform,
        "rows": len(scores),
        "bins": N_BINS,
        "features": {name: describe(transformed[:, i]) for i, name in enumerate(names)},
        SCORE: describe(scores),
    }


def reference_for(model: FraudMLP, features: np.ndarray) -> dict[str, Any]:
    """The reference of ``model`` on its raw training ``features``."""
    from fraudkeras.modeling.model import fraud_probabilities

    transformed = apply_numpy(features, model.features)
    return build_reference(transformed, fraud_probabilities(model, features), model.features)


def compare_one(reference: dict[str, Any], values: np.ndarray) -> dict[str, Any]:
    """PSI, share outside the training range and verdict of one distribution."""
    shares = bin_shares(values, np.asarray(reference["edges"]))
    value = psi(np.asarray(reference["shares"]), shares)
    outside = (values < reference["min"]) | (values > reference["max"])
    return {
        "psi": value,
        "outside_share": float(np.mean(outside)) if len(values) else 0.0,
        "verdict": verdict(value),
        "shares": shares.tolist(),
    }


def compare(
    reference: dict[str, Any], transformed: np.ndarray, scores: np.ndarray
) -> dict[str, Any]:
    """Every feature and the scores against ``reference``; the overall verdict is the worst."""
    names = list(reference["features"])
    if transformed.shape[1] != len(names):
        found = transformed.shape[1]
        raise ModelFileError(f"the drift reference has {len(names)} features, not {found}")
    features = {
        name: compare_one(reference["features"][name], transformed[:, i])
        for i, name in enumerate(names)
    }
    score = compare_one(reference[SCORE], scores)
    order = ("stable", "watch", "shifted")
    worst = max([score["verdict"], *(f["verdict"] for f in features.values())], key=order.index)
    shifted = [n for n, f in features.items() if f["verdict"] == "shifted"]
    return {
        "verdict": worst,
        "rows": len(scores),
        "shifted": shifted + ([SCORE] if score["verdict"] == "shifted" else []),
        "features": features,
        SCORE: score,
    }


def read_reference(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / REFERENCE_FILE
    if not path.is_file():
        raise ModelFileError(
            f"{path}: no drift reference (runs trained before it existed have none: train again)"
        )
    reference: dict[str, Any] = read_json(path)
    try:
        check_transform(reference["transform"])
        if not isinstance(reference["features"], dict) or "edges" not in reference[SCORE]:
            raise TypeError("features")
    except (KeyError, TypeError) as error:
        raise ModelFileError(f"{path}: not a drift reference ({error!r} missing)") from None
    return reference


def read_features(path: Path) -> np.ndarray:
    """The 30 features of a CSV/Parquet file, read by name (other columns ignored)."""
    frame = read_table(path)
    present = [name for name in FEATURES if name in frame.columns]
    frame = validate_frame(frame.select(present), source=str(path), require_label=False)
    return frame.select(FEATURES).to_numpy().astype(np.float64, copy=False)


def drift(run_dir: str | os.PathLike[str], data: str | os.PathLike[str]) -> dict[str, Any]:
    """Compare ``data`` with the training data of the run in ``run_dir``."""
    folder = layout.check_run_dir(Path(run_dir))
    reference = read_reference(folder)
    x = read_features(Path(data))
    from fraudkeras.modeling.model import (  # Keras: only once input is good
        fraud_probabilities,
        load_model,
    )

    with verified_copy(folder / layout.MODEL_FILE) as checked:  # refuses another run's model
        model = load_model(checked)
    if model.features != reference["transform"]:
        raise ModelFileError(f"{folder}: drift reference and model disagree on the transform")
    report = compare(reference, apply_numpy(x, model.features), fraud_probabilities(model, x))
    return {"run_dir": str(folder), "data": str(data), **report}


def outside_rows(reference: dict[str, Any], features: np.ndarray) -> np.ndarray:
    """Per row: does any transformed feature lie outside the training range?"""
    transformed = apply_numpy(features, reference["transform"])
    low = np.array([f["min"] for f in reference["features"].values()])
    high = np.array([f["max"] for f in reference["features"].values()])
    result: np.ndarray = np.any((transformed < low) | (transformed > high), axis=1)
    return result


def format_table(report: dict[str, Any]) -> str:
    """The terminal table: one line per feature, then the scores and the verdict."""
    lines = [f"{'feature':14s} {'PSI':>8s} {'outside':>8s}  verdict"]
    rows = [*report["features"].items(), (SCORE, report[SCORE])]
    for name, item in rows:
        lines.append(
            f"{name:14s} {item['psi']:8.4f} {item['outside_share']:8.2%}  {item['verdict']}"
        )
    shifted = ", ".join(report["shifted"]) or "nothing"
    lines.append(f"{report['rows']:,d} rows: {report['verdict']} (shifted: {shifted})")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> Path:
    """PSI per feature and for the scores as bars, the verdict bands marked
    (matplotlib object API and Agg canvas, as :mod:`fraudkeras.analysis.plots`)."""
    from fraudkeras.analysis.plots import new_figure, save_figure

    names = [*report["features"], SCORE]
    values = [item["psi"] for item in [*report["features"].values(), report[SCORE]]]
    colours = {"stable": "seagreen", "watch": "orange", "shifted": "crimson"}
    figure, ax = new_figure()
    ax.barh(names, values, color=[colours[verdict(v)] for v in values])
    for limit in (WATCH, SHIFTED):
        ax.axvline(limit, color="grey", linestyle="--", linewidth=0.8)
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=6)
    ax.set_xlabel("population stability index (0.1 watch, 0.25 shifted)")
    ax.set_title(f"Drift against the training data: {report['verdict']}")
    return save_figure(figure, path)
