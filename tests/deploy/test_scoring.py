"""Scoring files with any artifact: outputs checked against the artifact itself
and scikit-learn, batching invisible in the result, bad input refused cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, f1_score, recall_score

from fraudkeras._core.errors import DataError, OutputError, ParameterError
from fraudkeras.data.schema import FEATURES, LABEL
from fraudkeras.deploy.export import FORMATS
from fraudkeras.deploy.recorded import find_threshold
from fraudkeras.deploy.scoring import score
from helpers import numpy_model_inputs, run_cli


@pytest.fixture(scope="module")
def litert(exported) -> Path:
    return exported[0] / "export" / FORMATS["litert"]


def features(frame: pl.DataFrame) -> np.ndarray:
    return frame.select(FEATURES).to_numpy()


def numpy_forward(keras_file: Path, x: np.ndarray) -> np.ndarray:
    """The model's forward pass written in float64 NumPy from its saved weights."""
    from fraudkeras.modeling.model import load_model

    model = load_model(keras_file)
    mean = np.asarray(model.scaler.adapt_mean, dtype=np.float64)
    std = np.maximum(np.sqrt(np.asarray(model.scaler.adapt_variance, dtype=np.float64)), 1e-7)
    inputs = numpy_model_inputs(model.features, np.asarray(x, dtype=np.float32))
    h = (inputs - mean) / std
    for layer in model.hidden:
        h = np.maximum(h @ np.asarray(layer.kernel, np.float64) + np.asarray(layer.bias), 0.0)
    logits = h @ np.asarray(model.logit.kernel, np.float64) + np.asarray(model.logit.bias)
    if model.calibration is not None:  # the fitted map after the logit
        logits = logits * np.asarray(model.calibration.scale) + np.asarray(model.calibration.bias)
    return 1 / (1 + np.exp(-logits.ravel()))


def raw_runtime(path: Path, x: np.ndarray) -> np.ndarray:
    """Probabilities from the LiteRT interpreter or onnxruntime session, opened here."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (result,) = session.run(None, {session.get_inputs()[0].name: x})
        return np.asarray(result, dtype=np.float64).ravel()
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    (source,), (result,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(source["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], x)
    interpreter.invoke()
    return np.asarray(interpreter.get_tensor(result["index"]), dtype=np.float64).ravel()


def reference(run: Path, model: Path, x: np.ndarray) -> tuple[np.ndarray, float]:
    """An independent expectation for ``model``'s scores, and its tolerance: the raw
    runtime for LiteRT and ONNX files, float64 NumPy for Keras and SavedModel
    (float32 inference differs from it by about 1e-7)."""
    if model.suffix in (".tflite", ".onnx"):
        return raw_runtime(model, x), 1e-7
    return numpy_forward(run / "model.keras", x), 2e-6


@pytest.mark.parametrize("kind", ["keras", "saved_model", "litert-int8", "onnx"])
def test_scores_match_an_independent_reference_and_sklearn(
    exported, small_frame: pl.DataFrame, small_parquet: Path, tmp_path: Path, kind: str
) -> None:
    run, manifest = exported
    model = run / "model.keras" if kind == "keras" else run / "export" / FORMATS[kind]
    out = tmp_path / "scored.parquet"
    result = score(model, small_parquet, out, batch_rows=1000)

    scored = pl.read_parquet(out)
    assert scored.columns == [
        LABEL,
        "fraud_probability",
        "is_fraud",
        "expected_loss",
    ]  # Class passes through
    assert scored[LABEL].to_list() == small_frame[LABEL].to_list()
    expected, tolerance = reference(run, model, features(small_frame))
    assert np.allclose(scored["fraud_probability"].to_numpy(), expected, rtol=0, atol=tolerance)
    threshold = manifest["thresholds"]["tuned"]
    assert result.threshold == threshold  # found beside the model
    flags = scored["is_fraud"].to_numpy()
    assert np.array_equal(flags, (scored["fraud_probability"].to_numpy() >= threshold))
    assert result.rows == small_frame.height and result.flagged == flags.sum()

    y = small_frame[LABEL].to_numpy()
    p = scored["fraud_probability"].to_numpy()
    assert result.metrics is not None
    assert result.metrics["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert result.metrics["recall"] == pytest.approx(recall_score(y, flags))
    assert result.metrics["f1"] == pytest.approx(f1_score(y, flags))


def test_batch_size_does_not_change_the_output(litert: Path, small_parquet: Path, tmp_path: Path):
    whole = score(litert, small_parquet, tmp_path / "whole.parquet", batch_rows=10**6)
    pieces = score(litert, small_parquet, tmp_path / "pieces.csv", batch_rows=7)
    a = pl.read_parquet(tmp_path / "whole.parquet")
    b = pl.read_csv(tmp_path / "pieces.csv")
    assert np.allclose(a["fraud_probability"].to_numpy(), b["fraud_probability"].to_numpy())
    assert a["is_fraud"].to_list() == b["is_fraud"].to_list()
    assert whole.metrics == pieces.metrics


def test_csv_input_without_labels_and_a_given_threshold(
    litert: Path, small_frame: pl.DataFrame, tmp_path: Path
) -> None:
    data = tmp_path / "new.csv"
    small_frame.drop(LABEL).head(100).write_csv(data)
    result = score(litert, data, tmp_path / "out.csv", threshold=0.0)
    assert result.metrics is None
    assert result.flagged == 100 and result.threshold_source == "given"


def test_threshold_falls_back_to_half_without_a_run(litert: Path, tmp_path: Path) -> None:
    alone = tmp_path / "alone.tflite"
    alone.write_bytes(litert.read_bytes())
    assert find_threshold(alone) == (0.5, "default")


def test_nan_in_a_later_batch_names_its_rows_and_writes_nothing(
    litert: Path, small_frame: pl.DataFrame, tmp_path: Path
) -> None:
    frame = small_frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 2500).then(float("nan")).otherwise(pl.col("V3"))
        .alias("V3")
    )  # fmt: skip
    data = tmp_path / "bad.parquet"
    frame.write_parquet(data)
    message = r"rows 2001-3000\): missing, NaN or infinite values \(V3: 1"
    with pytest.raises(DataError, match=message):
        score(litert, data, tmp_path / "out.parquet", batch_rows=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.parquet"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop("V7"), "missing column(s) V7"),
        (lambda f: f.drop("V7", "V9"), "missing column(s) V7, V9"),
        (lambda f: f.with_columns(pl.lit(0.5).alias("is_fraud")), "is_fraud would clash"),
        (lambda f: f.with_columns(pl.col("V2").cast(pl.String) + "x"), "non-numeric"),
        (lambda f: f.head(0), "no rows"),
    ],
)
def test_bad_tables_are_refused(litert, small_frame, tmp_path: Path, change, message) -> None:
    data = tmp_path / "bad.parquet"
    change(small_frame).write_parquet(data)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        score(litert, data, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_outputs_are_checked_before_any_work(litert: Path, small_parquet: Path, tmp_path: Path):
    existing = tmp_path / "done.parquet"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="exists already"):
        score(litert, small_parquet, existing)
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(OutputError, match="would overwrite the input"):
        score(litert, small_parquet, small_parquet, force=True)
    with pytest.raises(OutputError, match=r"must be a \.csv or \.parquet file"):
        score(litert, small_parquet, tmp_path / "out.json")
    with pytest.raises(OutputError, match="no such folder"):
        score(litert, small_parquet, tmp_path / "nope" / "out.csv")
    with pytest.raises(ParameterError, match=r"threshold must be in \[0, 1\], got 1.5"):
        score(litert, small_parquet, tmp_path / "out.csv", threshold=1.5)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.integers(min_value=0, max_value=40),
    batch=st.integers(min_value=1, max_value=16),
    nan_at=st.one_of(st.none(), st.integers(min_value=0, max_value=39)),
    with_label=st.booleans(),
)
def test_scorer_on_random_tables(
    litert, small_frame, tmp_path_factory, rows, batch, nan_at, with_label
) -> None:
    """Any size from 0 rows, any batch size, a NaN anywhere: the output matches a
    single direct call, or the one right error comes and nothing is written."""
    folder = tmp_path_factory.mktemp("random")
    frame = small_frame.head(rows)
    if nan_at is not None and nan_at < rows:
        frame = frame.with_columns(
            pl.when(pl.int_range(pl.len()) == nan_at).then(None).otherwise(pl.col("Amount"))
            .alias("Amount")
        )  # fmt: skip
    data, out = folder / "in.parquet", folder / "out.parquet"
    (frame if with_label else frame.drop(LABEL)).write_parquet(data)
    if rows == 0 or (nan_at is not None and nan_at < rows):
        with pytest.raises(DataError, match="no rows" if rows == 0 else "Amount: 1"):
            score(litert, data, out, batch_rows=batch)
        assert not out.exists()
        return
    result = score(litert, data, out, batch_rows=batch)
    expected = raw_runtime(litert, features(frame))
    assert np.allclose(pl.read_parquet(out)["fraud_probability"].to_numpy(), expected, atol=1e-7)
    assert (result.metrics is not None) == with_label


def test_scoring_a_litert_file_needs_no_keras(litert: Path, small_parquet, tmp_path: Path):
    code = (
        "import sys, fraudkeras\n"
        f"result = fraudkeras.score({str(litert)!r}, {str(small_parquet)!r}, "
        f"{str(tmp_path / 'out.parquet')!r})\n"
        "print(result.rows, 'keras' in sys.modules, 'tensorflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3000", "False", "False"]


def test_cli_scores_and_reports(litert: Path, small_parquet: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    args = ("score", "--model", str(litert), "--data", str(small_parquet), "--out", str(out))
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert "scored 3,000 rows" in done.stdout and "PR-AUC" in done.stdout
    assert pl.read_csv(out).height == 3000
    again = run_cli(*args)
    assert again.returncode == 6
    assert again.stderr.strip().splitlines() == [
        f"fraudkeras: error: {out}: exists already (--force replaces it)"
    ]
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\0" * 100)
    bad = run_cli("score", "--model", str(broken), "--data", str(small_parquet), "--out", "x.csv")
    assert bad.returncode == 5 and "not a valid LiteRT model" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("form", ["pandas", "polars", "dict"])
def test_score_takes_a_frame_in_memory_by_column_name(
    litert: Path, small_frame: pl.DataFrame, tmp_path: Path, form: str
) -> None:
    head = small_frame.head(400).with_row_index("txn")
    shuffled = head.select(np.random.default_rng(4).permutation(head.columns).tolist())
    data = {
        "pandas": lambda: shuffled.to_pandas(),
        "polars": lambda: shuffled,
        "dict": lambda: {c: shuffled[c].to_numpy() for c in shuffled.columns},
    }[form]()
    out = tmp_path / "scored.parquet"
    result = score(litert, data, out, id_column="txn")
    scored = pl.read_parquet(out)
    assert scored["txn"].to_list() == list(range(400))
    expected = raw_runtime(litert, features(head))  # the array in the documented order
    np.testing.assert_allclose(scored["fraud_probability"].to_numpy(), expected, rtol=0, atol=1e-7)
    assert result.rows == 400 and result.metrics is not None
    with pytest.raises(DataError, match=r"^data: missing column\(s\) V2$"):
        score(litert, shuffled.drop("V2"), tmp_path / "other.parquet")


def test_a_part_that_cannot_be_written_is_an_output_error(
    litert: Path, small_parquet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(self: pl.DataFrame, *args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full_disk)
    out = tmp_path / "scored.csv"
    with pytest.raises(OutputError, match=r"scored\.csv: cannot write .*No space left on device"):
        score(litert, small_parquet, out)
    assert not out.exists() and list(tmp_path.iterdir()) == []
