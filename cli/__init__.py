"""The `houseprice` command, above the flows: the one place that talks to a person on the terminal.

A module per command; `main` is the console script's entry point.
"""

from .arguments import config_from_arguments
from .main import main
from .parser import build_parser
from .retrain import read_outcome
from .terminal import EXIT_CHECK, EXIT_FAILED, EXIT_KEPT, EXIT_PROMOTED, EXIT_REFUSED

__all__ = [
    "EXIT_CHECK",
    "EXIT_FAILED",
    "EXIT_KEPT",
    "EXIT_PROMOTED",
    "EXIT_REFUSED",
    "build_parser",
    "config_from_arguments",
    "main",
    "read_outcome",
]
