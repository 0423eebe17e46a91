"""One exception hierarchy, so callers can catch ``FraudKerasError`` and the CLI
can map each kind of failure to its own exit code."""

from __future__ import annotations


class FraudKerasError(Exception):
    """Base class of every error fraudkeras raises on purpose."""

    exit_code = 1


class ParameterError(FraudKerasError, ValueError):
    """An argument is out of range or of the wrong kind."""

    exit_code = 2


class DataError(FraudKerasError, ValueError):
    """Transaction data is missing, unreadable or does not match the schema."""

    exit_code = 3


class BackendError(FraudKerasError, RuntimeError):
    """The requested Keras backend is unknown, not installed or cannot be switched to."""

    exit_code = 4


class ModelFileError(FraudKerasError):
    """A model file or run folder is missing, corrupt or of another kind."""

    exit_code = 5


class OutputError(FraudKerasError):
    """An output path exists already or cannot be written."""

    exit_code = 6


class TrainingError(FraudKerasError, RuntimeError):
    """Training diverged (NaN loss) or could not produce a usable model."""

    exit_code = 7


class ExportError(FraudKerasError):
    """An exported artifact could not be built or disagrees with the Keras model."""

    exit_code = 8


class ListenError(FraudKerasError, OSError):
    """A server's port is taken or cannot be bound: the server does not start."""

    exit_code = 9


def first_line(error: BaseException) -> str:
    """The first line of an error's message (or its type's name): third-party
    errors often carry pages of detail, and our messages are one line."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
