"""Explanations, feature importance, a new threshold and a drift check, on the run
that examples/python_api.py wrote to runs/api (run by tests/cli/test_workflows.py)."""

import fraudkeras

fraudkeras.use_backend("jax")  # optional; before the first Keras import
parts = fraudkeras.split(fraudkeras.load_transactions("sample"))  # the run's split
features = parts.test.x  # raw transactions: n x 30, columns in fraudkeras.FEATURES order

onnx = fraudkeras.open_artifact("runs/api/export/model.onnx")  # or a .tflite, a SavedModel
p = onnx.predict(features)  # fraud probabilities, one per row
model = fraudkeras.load_model("runs/api/model.keras")  # or keras.saving.load_model
why = fraudkeras.explain(model, features[0])  # probability and per-feature contributions
contributions = fraudkeras.attributions(model, features[:100])  # 100 x 30, logit units
importance = fraudkeras.permutation_importance(
    onnx.predict, parts.validation.x, parts.validation.y, repeats=2
)
print("most important:", importance.ranking()[0]["feature"])

fraudkeras.retune("runs/api", fraudkeras.ThresholdPolicy("cost", review_cost=5.0))
drift = fraudkeras.drift("runs/api", fraudkeras.sample_path())  # PSI per input and score
print("shifted inputs:", drift["shifted"])
