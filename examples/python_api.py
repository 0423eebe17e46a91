"""The README's Python example, run as it is by tests/cli/test_workflows.py."""

import fraudkeras

fraudkeras.use_backend("jax")  # optional; before the first Keras import
data = fraudkeras.load_transactions("sample")  # or a .csv/.parquet path, or "openml"
run = fraudkeras.train(data, epochs=2, out="runs/api", force=True)  # writes runs/api/report/
print("test PR-AUC", round(run.metrics["test"]["pr_auc"], 4))

again = fraudkeras.evaluate("runs/api")  # the same numbers, under any backend
manifest = fraudkeras.export("runs/api", formats=("litert", "onnx"), force=True)
result = fraudkeras.score(
    "runs/api/export/model_float32.tflite",
    fraudkeras.sample_path(),  # any CSV/Parquet with the 30 features, any column order
    "runs/api/scored.parquet",
    force=True,
)
print(result.rows, "rows scored,", result.flagged, "flagged")
