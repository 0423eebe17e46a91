"""Foundations every layer may use: errors, parameter checks, backend choice,
interrupts, atomic files, provenance and the subprocess runner. Keras-free."""
