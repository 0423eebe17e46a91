"""What a trained run is worth and why: evaluation, thresholds, importance,
attributions, error analysis, plots and the report."""
