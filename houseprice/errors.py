"""Errors shared across layers; this module imports nothing, so any layer may raise them."""


class InputError(Exception):
    """Caused by the user's data, files or settings: reported in one line, never as a bug.

    A marker: an error class of any layer inherits it beside its own base (ValueError, ...), so
    houseprice/failures.py classifies it without importing the layer that raises it.
    """


class ModelLoadError(InputError, RuntimeError):
    """A saved model file is missing, truncated, tampered with or has the wrong shape."""


class SourceError(InputError, ValueError):
    """The source cannot be read as a table (missing, empty, wrong format); retrying won't help."""


class TransientSourceError(OSError):
    """A source that may read on a later try (network trouble); the message names it."""


class InputSchemaError(InputError, ValueError):
    """Input rows the model cannot score: a column missing, of the wrong type or absurd."""
