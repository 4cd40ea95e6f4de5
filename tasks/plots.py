"""Plots: the report's matplotlib figures, each returned as an inline PNG data URI.

Owns how a model is named and coloured in a figure (tasks/report.py names models in its tables
with the same `model_label`) and every figure: loss curves (every trainer in one panel), and,
for one model, predicted against actual, residuals against predicted, their normal QQ plot and
histogram. Every figure is a row of panels, each drawn by one small function.
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
from scipy import stats

from houseprice.tasks.evaluate import REFERENCE
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


def _grid(panels: list[Callable[[Axes], None]], columns: int = 2) -> str:
    """Panels, `columns` to a row, each drawn by its function, as an inline PNG.

    A bare Figure (not pyplot) is never registered in pyplot's global figure list, so nothing
    leaks between runs and rendering is safe in Prefect's worker threads.
    """
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(5.4 * columns, 3.8 * rows), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False).ravel()
    for axes, draw in zip(grid, panels, strict=False):
        draw(axes)
        axes.grid(alpha=0.3)
    for unused in grid[len(panels) :]:
        unused.set_visible(False)
    return _png_data_uri(figure)


def _labels(axes: Axes, title: str, xlabel: str, ylabel: str) -> None:
    axes.set(title=_plain(title), xlabel=_plain(xlabel), ylabel=_plain(ylabel))


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
    """Train and validation MSE per epoch of every trainer in one panel, against the optimum."""

    def draw(axes: Axes) -> None:
        for rank, result in enumerate(results):
            name, color = model_label(result.framework), model_color(result.framework)
            epochs = np.arange(1, len(result.train_loss) + 1)
            # Trainers that converge alike draw the same curve: each later one thinner, so an
            # earlier one still shows around it.
            width = max(1.0, 3.5 - 1.2 * rank)
            axes.plot(epochs, result.train_loss, color=color, lw=width, label=f"{name} train")
            axes.plot(
                epochs, result.val_loss, color=color, lw=width, ls=":", label=f"{name} validation"
            )
        axes.axhline(optimum, color="black", ls="--", lw=1, label="least-squares train optimum")
        axes.set_yscale("log")
        _short_ticks(axes.yaxis, minor=True)
        axes.legend(fontsize="small")
        _labels(axes, "Loss curves", "epoch", "MSE (scaled target)")

    return _grid([draw])


# Points drawn per scatter panel: more only blur into one blot, and drawing each costs time, so
# past this many rows the panels show an evenly spaced subset (every row stays in the metrics
# and the histogram).
MAX_SCATTER_POINTS = 20_000


def scatter_rows(rows: int) -> slice:
    """The rows a scatter draws: all of them, or every k-th up to MAX_SCATTER_POINTS."""
    return slice(None, None, max(1, -(-rows // MAX_SCATTER_POINTS)))


def normal_quantiles(residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(theoretical, sample) standardized quantiles for a QQ plot, at most MAX_SCATTER_POINTS.

    Plotting positions (i − 0.5) / n, as scipy's probplot and R's qqnorm (n > 10) use them.
    """
    ordered = np.sort(np.asarray(residuals, dtype="float64"))
    spread = ordered.std()
    sample = (ordered - ordered.mean()) / (spread if spread > 0 else 1.0)
    positions = (np.arange(1, len(sample) + 1) - 0.5) / len(sample)
    shown = scatter_rows(len(sample))
    return stats.norm.ppf(positions[shown]), sample[shown]


def fit_plots(actual: np.ndarray, predicted: np.ndarray, name: str, target: str) -> str:
    """One model's fit, 2 × 2: predicted vs actual; residuals vs predicted, histogram, QQ plot."""
    color, residuals = model_color(name), actual - predicted
    shown = scatter_rows(len(actual))
    residual = f"residual (actual − predicted {target})"

    def predicted_vs_actual(axes: Axes) -> None:
        low, high = float(actual.min()), float(actual.max())
        axes.scatter(actual[shown], predicted[shown], s=12, alpha=0.6, color=color)
        axes.plot([low, high], [low, high], color="black", lw=1, ls="--", label="y = x")
        axes.legend(fontsize="small")
        _short_ticks(axes.xaxis, axes.yaxis)
        _labels(axes, "Predicted vs actual", f"actual {target}", f"predicted {target}")

    def residuals_vs_predicted(axes: Axes) -> None:
        axes.scatter(predicted[shown], residuals[shown], s=12, alpha=0.6, color=color)
        axes.axhline(0, color="black", lw=1, ls="--")
        _short_ticks(axes.xaxis, axes.yaxis)
        _labels(axes, "Residuals vs predicted", f"predicted {target}", residual)

    def quantiles(axes: Axes) -> None:
        theoretical, sample = normal_quantiles(residuals)
        axes.scatter(theoretical, sample, s=10, alpha=0.6, color=color)
        axes.axline((0, 0), slope=1, color="black", lw=1, ls="--", label="normal")
        axes.legend(fontsize="small")
        _labels(axes, "Normal QQ plot of residuals", "normal quantile", "standardized residual")

    def histogram(axes: Axes) -> None:
        axes.hist(residuals, bins="auto", color=color, alpha=0.8)
        axes.axvline(0, color="black", lw=1, ls="--")
        _short_ticks(axes.xaxis)
        _labels(axes, "Residual histogram", residual, "rows")

    return _grid([predicted_vs_actual, residuals_vs_predicted, histogram, quantiles])
