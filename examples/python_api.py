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

features = run.split.test.x  # raw transactions: n x 30, columns in fraudkeras.FEATURES order
p = fraudkeras.open_artifact("runs/api/export/model.onnx").predict(features)
model = fraudkeras.load_model("runs/api/model.keras")  # or keras.saving.load_model
why = fraudkeras.explain(model, features[0])  # probability and per-feature contributions
contributions = fraudkeras.attributions(model, features[:100])  # 100 x 30, logit units
importance = fraudkeras.permutation_importance(
    lambda x: fraudkeras.open_artifact("runs/api/export/model.onnx").predict(x),
    run.split.validation.x,
    run.split.validation.y,
    repeats=2,
)
print("most important:", importance.ranking()[0]["feature"])
fraudkeras.retune("runs/api", fraudkeras.ThresholdPolicy("cost", review_cost=5.0))
drift = fraudkeras.drift("runs/api", fraudkeras.sample_path())  # PSI per input and score
print("shifted inputs:", drift["shifted"])
