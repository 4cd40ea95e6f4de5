"""Errors shared across layers; this module imports nothing, so any layer may raise them."""


class ModelLoadError(RuntimeError):
    """A saved model file is missing, truncated, tampered with or has the wrong shape."""
