"""Plots: the report's matplotlib figures, each returned as an inline PNG data URI.

Owns how a model is named and coloured in a figure (tasks/report.py names models in its tables
with the same `model_label`) and every figure: loss curves, predicted against actual, and
residuals. Every figure is a row of panels, one per model, drawn by one small function per kind.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from houseprice.tasks.evaluate import REFERENCE, Evaluation
from houseprice.trainers import get_trainer, trainer_label, trainer_names
from houseprice.trainers.common import TrainResult

REFERENCE_LABEL = "least squares (reference)"
REFERENCE_COLOR = "#555555"


def model_label(name: str) -> str:
    """How a model is named to a reader: 'PyTorch', not 'torch'; unknown names as they are."""
    return REFERENCE_LABEL if name == REFERENCE else trainer_label(name)


def model_color(name: str) -> str | None:
    """A model's colour in every figure: its trainer's, else matplotlib's next one (None)."""
    if name == REFERENCE:
        return REFERENCE_COLOR
    return get_trainer(name).color if name in trainer_names() else None


def _png_data_uri(figure: Figure) -> str:
    """Render a figure to an inline PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _panels(names: list[str], draw: Callable[[Axes, str], None], xlabel: str, ylabel: str) -> str:
    """One panel per name, drawn by draw(axes, name), as an inline PNG.

    A bare Figure (not pyplot) is never registered in pyplot's global figure list, so nothing
    leaks between runs and rendering is safe in Prefect's worker threads.
    """
    figure = Figure(figsize=(4.2 * len(names), 3.6), layout="constrained")
    for axes, name in zip(figure.subplots(1, len(names), squeeze=False)[0], names, strict=True):
        draw(axes, name)
        axes.set(title=model_label(name), xlabel=_plain(xlabel), ylabel=_plain(ylabel))
        axes.grid(alpha=0.3)
    return _png_data_uri(figure)


def _plain(text: str) -> str:
    """Stop matplotlib reading '$...$' in a column name as mathtext."""
    return text.replace("$", r"\$")


def _short_number(value: float, _position: object = None) -> str:
    """Tick label short enough not to collide with its neighbours: 250k, 1.2M, 0.35."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def _short_ticks(*axes: Any, minor: bool = False) -> None:
    for axis in axes:
        axis.set_major_formatter(FuncFormatter(_short_number))
        if minor:  # log axes label some minor ticks; keep them plain numbers, not 6×10⁻¹
            axis.set_minor_formatter(FuncFormatter(_short_number))


def loss_plot(results: list[TrainResult], optimum: float) -> str:
    """Train and validation MSE per epoch for each trainer, against the least-squares optimum."""
    by_name = {result.framework: result for result in results}

    def draw(axes: Axes, name: str) -> None:
        result = by_name[name]
        epochs = np.arange(1, len(result.train_loss) + 1)
        axes.plot(epochs, result.train_loss, color=model_color(name), label="train")
        axes.plot(epochs, result.val_loss, color=model_color(name), ls=":", label="validation")
        axes.axhline(optimum, color="black", ls="--", lw=1, label="least-squares train optimum")
        axes.set_yscale("log")
        _short_ticks(axes.yaxis, minor=True)
        axes.legend(fontsize="small")

    return _panels(list(by_name), draw, "epoch", "MSE (scaled target)")


# Points drawn per scatter panel: more only blur into one blot, and drawing each costs time, so
# past this many test rows the panels show an evenly spaced subset (every row stays in the
# metrics and the histograms).
MAX_SCATTER_POINTS = 20_000


def scatter_rows(rows: int) -> slice:
    """The test rows a scatter draws: all of them, or every k-th up to MAX_SCATTER_POINTS."""
    return slice(None, None, max(1, -(-rows // MAX_SCATTER_POINTS)))


def prediction_plot(evaluation: Evaluation, target: str) -> str:
    """Predicted against actual test prices, one panel per model, with the y = x line."""
    actual = evaluation.y_test
    low, high = float(actual.min()), float(actual.max())
    shown = scatter_rows(len(actual))

    def draw(axes: Axes, name: str) -> None:
        predicted = evaluation.models[name].test_predictions
        axes.scatter(actual[shown], predicted[shown], s=12, alpha=0.6, color=model_color(name))
        axes.plot([low, high], [low, high], color="black", lw=1, ls="--", label="y = x")
        axes.legend(fontsize="small")
        _short_ticks(axes.xaxis, axes.yaxis)

    return _panels(list(evaluation.models), draw, f"actual {target}", f"predicted {target}")


def residual_plots(evaluation: Evaluation, target: str) -> list[str]:
    """Residuals (actual − predicted) against predicted price, and their histogram."""
    names = list(evaluation.models)
    residuals = {n: evaluation.y_test - m.test_predictions for n, m in evaluation.models.items()}
    shown = scatter_rows(len(evaluation.y_test))

    def scatter(axes: Axes, name: str) -> None:
        predicted = evaluation.models[name].test_predictions[shown]
        axes.scatter(predicted, residuals[name][shown], s=12, alpha=0.6, color=model_color(name))
        axes.axhline(0, color="black", lw=1, ls="--")
        _short_ticks(axes.xaxis, axes.yaxis)

    def histogram(axes: Axes, name: str) -> None:
        axes.hist(residuals[name], bins="auto", color=model_color(name), alpha=0.8)
        axes.axvline(0, color="black", lw=1, ls="--")
        _short_ticks(axes.xaxis)

    residual = f"residual (actual − predicted {target})"
    return [
        _panels(names, scatter, f"predicted {target}", residual),
        _panels(names, histogram, residual, "test rows"),
    ]
