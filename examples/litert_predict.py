"""Run an exported LiteRT file with the LiteRT interpreter alone (no fraudkeras, no
Keras): signature ``serve``, input ``transactions``, output ``fraud_probability``.

    python examples/litert_predict.py runs/quickstart/export/model_int8.tflite
"""

import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def fraud_probabilities(model_path: str, transactions: np.ndarray) -> np.ndarray:
    """One probability per row of raw transactions (n x 30: Time, V1..V28, Amount)."""
    serve = Interpreter(model_path=model_path).get_signature_runner("serve")
    outputs = serve(transactions=np.asarray(transactions, dtype=np.float32))  # any n
    return outputs["fraud_probability"].ravel()


if __name__ == "__main__":
    two_rows = np.zeros((2, 30), dtype=np.float32)  # Time 0, every V 0, Amount 0
    print(fraud_probabilities(sys.argv[1], two_rows))
