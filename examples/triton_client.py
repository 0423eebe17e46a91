"""Scoring transactions on a running `fraudkeras serve` with tritonclient's HTTP
client, as shipped: its defaults send and receive raw binary tensor data."""

import numpy as np
import tritonclient.http as httpclient


def score(url: str, transactions: np.ndarray, model: str = "fraud") -> dict[str, np.ndarray]:
    """The three outputs for ``transactions`` (n x 30, float32, FEATURES order)."""
    client = httpclient.InferenceServerClient(url)  # e.g. "127.0.0.1:8080"
    given = httpclient.InferInput("transactions", list(transactions.shape), "FP32")
    given.set_data_from_numpy(transactions.astype(np.float32))  # binary, the default
    result = client.infer(model, [given])
    client.close()
    return {
        name: result.as_numpy(name) for name in ("fraud_probability", "is_fraud", "expected_loss")
    }
