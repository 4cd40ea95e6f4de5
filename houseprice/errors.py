"""Errors shared across layers; this module imports nothing, so any layer may raise them."""


class ModelLoadError(RuntimeError):
    """A saved model file is missing, truncated, tampered with or has the wrong shape."""


class SourceError(ValueError):
    """The source cannot be read as a table (missing, empty, wrong format); retrying won't help."""


class TransientSourceError(OSError):
    """A source that may read on a later try (network trouble); the message names it."""


class InputSchemaError(ValueError):
    """Input rows the model cannot score: a column missing, of the wrong type or absurd."""
