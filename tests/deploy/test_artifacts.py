"""Opening artifacts: each kind by its path, and every damaged or unknown file
refused with a ModelFileError naming it (agreement with Keras: test_exporting)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import numpy_reference as reference
import pytest

from fraudkeras._core.errors import DataError, ModelFileError
from fraudkeras.deploy.artifacts import kind_of, open_artifact
from fraudkeras.deploy.export import FORMATS
from helpers import largest_gap, numpy_model_inputs

#: measured: max |KerasArtifact.predict - NumPy float64 forward pass| on the test split
#: of the 3,000-row fixture: 4.2e-7 (jax), 2.6e-7 (torch), 1.5e-7 (tensorflow); about 2x the worst
PROBABILITY_ATOL = 1e-6


def test_kind_follows_the_path(exported) -> None:
    run, _ = exported
    assert kind_of(run / "model.keras") == "keras"
    assert kind_of(run / "export" / "saved_model") == "saved_model"
    assert kind_of(run / "export" / FORMATS["litert-int8"]) == "litert"
    assert kind_of(run / "export" / FORMATS["onnx"]) == "onnx"


def test_keras_file_runs_under_the_active_backend(exported, trained_run) -> None:
    run, _ = exported
    x = trained_run.split.test.x
    got = open_artifact(run / "model.keras").predict(x)
    # independent: the trained (in-memory) model's weights run through NumPy in float64
    inputs = numpy_model_inputs(trained_run.model.features, x)
    expected = reference.probabilities(reference.weights_of(trained_run.model), inputs)
    print(f"keras artifact vs NumPy: {largest_gap([got], [expected]):.2e}")
    assert got.dtype == np.float64 and got.shape == (len(x),)
    np.testing.assert_allclose(got, expected, rtol=0, atol=PROBABILITY_ATOL)


def test_litert_runs_any_batch_size_as_the_numpy_forward_pass(exported, trained_run) -> None:
    """Batches of other sizes one after another (a server's merged batches) and one
    larger than an interpreter is planned for (run in slices), against NumPy."""
    run, _ = exported
    x = np.tile(trained_run.split.test.x, (4, 1))[:10_000]  # > 4,096 rows
    inputs = numpy_model_inputs(trained_run.model.features, x)
    expected = reference.probabilities(reference.weights_of(trained_run.model), inputs)
    artifact = open_artifact(run / "export" / FORMATS["litert"])
    for rows in (1, 7, 10_000, 7, 4_097, 1):
        np.testing.assert_allclose(artifact.predict(x[:rows]), expected[:rows], rtol=0, atol=1e-5)


def test_features_of_the_wrong_width_are_refused(exported) -> None:
    run, _ = exported
    artifact = open_artifact(run / "export" / FORMATS["litert"])
    with pytest.raises(DataError, match=r"features: expected shape \(n, 30\), got \(4, 29\)"):
        artifact.predict(np.zeros((4, 29), np.float32))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("model.tflite", "not a valid LiteRT model"),
        ("model.onnx", "not a valid ONNX model"),
        ("model.keras", "not a .keras file"),
    ],
)
def test_random_bytes_are_refused(tmp_path: Path, name: str, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError, match=rf"^{path}: {message}"):
        open_artifact(path)


@pytest.mark.parametrize("name", ["litert", "onnx"])
def test_truncated_files_are_refused(exported, tmp_path: Path, name: str) -> None:
    run, _ = exported
    source = run / "export" / FORMATS[name]
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(ModelFileError, match=f"^{path}: not a valid"):
        open_artifact(path)


def test_saved_model_without_variables_is_refused(exported, tmp_path: Path) -> None:
    run, _ = exported
    broken = tmp_path / "saved_model"
    shutil.copytree(run / "export" / "saved_model", broken)
    shutil.rmtree(broken / "variables")
    with pytest.raises(ModelFileError, match=f"^{broken}: cannot load SavedModel"):
        open_artifact(broken)


def test_folder_that_is_not_a_saved_model_is_refused(tmp_path: Path) -> None:
    message = rf"^{re.escape(str(tmp_path))}: not a SavedModel folder \(no saved_model\.pb\)"
    with pytest.raises(ModelFileError, match=message):
        open_artifact(tmp_path)


def test_missing_and_unknown_files_are_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope.tflite"
    with pytest.raises(ModelFileError, match=rf"^{re.escape(str(missing))}: no such model file"):
        open_artifact(missing)
    unknown = tmp_path / "model.pkl"
    unknown.write_bytes(b"x")
    with pytest.raises(
        ModelFileError, match=rf"^{re.escape(str(unknown))}: unknown model type '\.pkl'"
    ):
        open_artifact(unknown)


@pytest.mark.parametrize("name", ["keras", "saved_model", "litert", "onnx"])
def test_every_runner_matches_a_frame_by_column_name(exported, trained_run, name: str) -> None:
    import pandas as pd
    import polars as pl

    from fraudkeras.data.schema import FEATURES

    run, _ = exported
    path = run / "model.keras" if name == "keras" else run / "export" / FORMATS[name]
    artifact = open_artifact(path)
    x = trained_run.split.test.x[:300].astype(np.float32)
    frame = pd.DataFrame(x, columns=list(FEATURES)).assign(account=np.arange(len(x)))
    frame = frame[list(np.random.default_rng(5).permutation(frame.columns.to_numpy()))]
    canonical = artifact.predict(x)  # the reference: the array in the documented order
    for data in (frame, pl.from_pandas(frame), {c: frame[c].to_numpy() for c in frame.columns}):
        np.testing.assert_array_equal(artifact.predict(data), canonical)
    with pytest.raises(DataError, match=r"missing column\(s\) V5$"):
        artifact.predict(frame.drop(columns=["V5"]))
