"""Fine-tune a trained model on newer transactions with plain Keras: load, compile,
fit, save. Uses the run that examples/python_api.py wrote to runs/api (run by
tests/cli/test_workflows.py)."""

import keras

import fraudkeras  # before or after Keras: either way Keras then knows FraudMLP

model = keras.saving.load_model("runs/api/model.keras")  # a FraudMLP, any backend
newer = fraudkeras.load_transactions(fraudkeras.sample_path())  # your newer labelled rows
x, y = newer.features(), newer.labels()  # n x 30 raw transactions, FEATURES order

model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-4))  # a smaller step
model.fit(x, y, epochs=1, batch_size=256, verbose=0)
print("fine-tuned p:", model.predict(x[:3], verbose=0).ravel())
model.save("runs/api/fine_tuned.keras")  # loads anywhere, like the original
