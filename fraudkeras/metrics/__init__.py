"""Thresholds, classification metrics and their text tables (NumPy and
scikit-learn only, so scoring never needs Keras)."""
