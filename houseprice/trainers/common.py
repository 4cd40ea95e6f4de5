"""What every trainer shares: its input, its result, its errors and its bookkeeping.

The bookkeeping (loss history, convergence, early stopping, divergence) and the conjugate
gradient's direction algebra work on small numpy vectors; each trainer only supplies its
framework's autograd cost and gradient, so all fits follow one algorithm.

This module imports numpy only, so a framework module can be used (e.g. on a GPU box by
benchmarks/gpu_check.py) without Prefect, pydantic or the other framework installed.
"""

from __future__ import annotations

import math
import platform
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from houseprice.errors import InputError, ModelLoadError

Log = Callable[[str], None]  # where a trainer writes its progress lines


class TrainingData(NamedTuple):
    """Scaled design matrices and targets; x is (rows, features), y is (rows,), float64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@dataclass
class TrainResult:
    """A trained linear model y = x @ weights + bias, in the scaled feature/target space."""

    framework: str  # the trainer's registered name: "torch", "tensorflow", ...
    weights: np.ndarray  # (features,) float64
    bias: float
    train_loss: list[float]  # training MSE after each epoch
    val_loss: list[float]  # validation MSE after each epoch
    device: str  # what the framework calls it, e.g. "cpu", "cuda:0", "/GPU:0"
    device_name: str  # human-readable, e.g. "NVIDIA H100 80GB HBM3" or the CPU model
    seconds: float  # wall time of the fit, tensor conversion included
    epochs: int
    optimizer: str
    stop_reason: str  # "converged", "early_stopping", "max_epochs"
    extras: dict[str, float | int | str] = field(default_factory=dict)
    export_file: str | None = None  # the stand-alone export the training task wrote, if any

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predict in the scaled target space with numpy (framework-free)."""
        return x @ self.weights + self.bias


def export_view(result: TrainResult, prep: Any) -> tuple[TrainResult, Any]:
    """result and prep over every encoded column (dropped ones at weight 0), as exports need."""
    full_prep, weights = prep.with_dropped_restored(result.weights)
    return replace(result, weights=weights), full_prep


class TrainingDivergedError(InputError, RuntimeError):
    """The loss became NaN, infinite or exploded; the message names the setting to change."""


class DegenerateFitError(InputError, RuntimeError):
    """A fit that cannot be a model (non-finite weights, a zero or NaN loss on varying data)."""


def check_fit(result: TrainResult, data: TrainingData) -> None:
    """Raise DegenerateFitError for a fit that must not be saved; the training task calls it."""
    finite = bool(np.isfinite(data.x_train).all() and np.isfinite(data.y_train).all())
    check_fit_summary(result, finite, float(np.ptp(data.y_train)), len(data.y_train))


def check_fit_summary(result: TrainResult, finite: bool, target_spread: float, rows: int) -> None:
    """check_fit from what it needs of the training data (streamed.py has only its statistics)."""
    where = f"{result.framework} fit"
    if not (np.isfinite(result.weights).all() and math.isfinite(result.bias)):
        bad = np.flatnonzero(~np.isfinite(result.weights))[:5].tolist()
        raise DegenerateFitError(f"{where} has non-finite weights (design columns {bad})")
    if not finite:
        raise DegenerateFitError(
            f"{where}: the training data holds NaN or infinite values after scaling"
        )
    final = result.train_loss[-1] if result.train_loss else float("nan")
    if not math.isfinite(final):
        raise DegenerateFitError(f"{where} ended with training loss {final}")
    # Exactly zero on a target that varies: the target was flattened (e.g. scaled by an
    # infinite spread), not fitted; a real fit of noisy prices never reaches 0.0.
    if final == 0.0 and target_spread > 0:
        raise DegenerateFitError(f"{where} reached loss 0 on a varying target: nothing was fitted")
    if final == 0.0 and target_spread == 0 and rows > 1:
        raise DegenerateFitError(
            f"{where}: the scaled target is constant, so there is nothing to fit "
            "(check the target column for one value or values too large to scale)"
        )


class DeviceUnavailableError(InputError, RuntimeError):
    """The configured device does not exist on this machine; the message names the setting."""


def setting_name(framework: str, field_name: str) -> str:
    """The config path of a trainer setting, e.g. 'training.torch.learning_rate'."""
    return f"training.{framework}.{field_name}"


def describe_cpu() -> str:
    """The CPU model from /proc/cpuinfo, or the platform's name where that file is missing."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe_load_failure(kind: str, path: object, error: BaseException) -> ModelLoadError:
    """A ModelLoadError naming the file and the gist of what went wrong, not a traceback."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()  # some carry terminal colours
    # Framework messages run on with advice for their own API; the first sentence says what failed.
    reason = text.splitlines()[0].split(". ")[0] if text else type(error).__name__
    return ModelLoadError(f"cannot load {kind} from {path}: {reason[:300]}")


def check_zip_archive(kind: str, path: Path) -> None:
    """Raise ModelLoadError unless path is a readable zip archive (.pt, .pt2, .keras all are)."""
    if not path.is_file():
        raise describe_load_failure(kind, path, FileNotFoundError("no such file"))
    if not zipfile.is_zipfile(path):
        raise describe_load_failure(
            kind, path, ValueError("not a zip archive (truncated or not a model file)")
        )


# Standard Adam constants (Kingma & Ba); both trainers use them so their Adam fits agree.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8
DEFAULT_LEARNING_RATES = {"adam": 0.01, "sgd": 0.05}
# A training cost this many times the cost at the start (weights zero) has exploded: with
# standardized data the start cost is about 1, and no useful step makes it 10,000 times worse.
EXPLOSION_FACTOR = 1e4
# Converged means this many epochs in a row improved the cost by less than the tolerance: on
# nearly collinear features conjugate gradient alternates stalls and big steps (clustered
# eigenvalues), so one flat epoch alone stopped it with coefficients still 0.2% off.
CONVERGENCE_WINDOW = 2
# Seconds between epoch lines in the log.
PROGRESS_EVERY_S = 2.0


def resolve_learning_rate(optimizer: str, learning_rate: float | None) -> float | None:
    """The learning rate to use: the configured one, the optimizer's default, or None for cg."""
    if optimizer == "cg":
        return None
    return learning_rate if learning_rate is not None else DEFAULT_LEARNING_RATES[optimizer]


@dataclass
class EpochTracker:
    """Per-epoch bookkeeping every trainer shares: loss history and the three stop rules.

    Parameters are flat numpy vectors [weights..., bias]. record() raises TrainingDivergedError on
    a NaN, infinite or exploded loss, and returns the stop reason once training should stop.
    """

    framework: str
    optimizer: str
    max_epochs: int
    tolerance: float
    patience: int | None
    learning_rate: float | None
    log: Callable[[str], None]
    # Full-batch Adam's cost rises and falls as it spirals in: there a rise is no convergence.
    full_batch: bool = False
    start_cost: float = float("nan")
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_params: np.ndarray | None = None
    best_epoch: int = 0
    _previous_cost: float = float("nan")
    _flat_epochs: int = 0
    _last_progress: float = 0.0

    @classmethod
    def for_settings(
        cls, framework: str, settings: Any, log: Callable[[str], None]
    ) -> EpochTracker:
        """A tracker for one fit with a TrainerConfig (or any object with its fields)."""
        return cls(
            framework=framework,
            optimizer=settings.optimizer,
            max_epochs=settings.max_epochs,
            tolerance=settings.tolerance,
            patience=settings.early_stopping_patience,
            learning_rate=resolve_learning_rate(settings.optimizer, settings.learning_rate),
            log=log,
        )

    def start(self, cost: float) -> None:
        """Remember the cost at the starting point, the yardstick for 'exploded'."""
        if not math.isfinite(cost):
            raise ValueError(
                f"{self.framework}: the training cost is {cost} before any step; "
                "the training data holds NaN or infinite values"
            )
        self.start_cost = self._previous_cost = cost

    def record(
        self, params: np.ndarray, train_mse: float, val_mse: float, cost: float | None = None
    ) -> str | None:
        """Log one epoch; return 'converged', 'early_stopping' or 'max_epochs' to stop, else None.

        cost is the minimized objective (MSE plus the l2 penalty); it defaults to train_mse.
        """
        cost = train_mse if cost is None else cost
        epoch = len(self.train_loss) + 1
        self._check_divergence(epoch, cost, val_mse, params)
        self.train_loss.append(float(train_mse))
        self.val_loss.append(float(val_mse))
        improvement = (self._previous_cost - cost) / max(abs(self._previous_cost), 1e-300)
        improvement = abs(improvement) if self.full_batch else improvement
        self._previous_cost = cost
        self._flat_epochs = self._flat_epochs + 1 if improvement < self.tolerance else 0
        self._log_progress(epoch, train_mse, val_mse)
        if self.best_params is None or val_mse < self.val_loss[self.best_epoch - 1]:
            self.best_params, self.best_epoch = params.copy(), epoch
        if self.patience is not None and epoch - self.best_epoch >= self.patience:
            return "early_stopping"
        if self._flat_epochs >= CONVERGENCE_WINDOW:
            return "converged"
        return "max_epochs" if epoch >= self.max_epochs else None

    def final_params(self, params: np.ndarray, stop_reason: str) -> np.ndarray:
        """The parameters to return: the best-validation ones after early stopping, else params."""
        if stop_reason == "early_stopping" and self.best_params is not None:
            return self.best_params
        return params

    def to_result(
        self,
        params: np.ndarray,
        stop_reason: str,
        device: tuple[str, str],
        started: float,
        extras: dict[str, float | int | str],
    ) -> TrainResult:
        """The fit's TrainResult (device is (name, human name)); logs the one-line summary."""
        extras = {**extras, "best_epoch": self.best_epoch}
        if self.learning_rate is not None:
            extras["learning_rate"] = self.learning_rate
        result = TrainResult(
            framework=self.framework,
            weights=np.array(params[:-1], dtype=np.float64),
            bias=float(params[-1]),
            train_loss=self.train_loss,
            val_loss=self.val_loss,
            device=device[0],
            device_name=device[1],
            seconds=time.perf_counter() - started,
            epochs=len(self.train_loss),
            optimizer=self.optimizer,
            stop_reason=stop_reason,
            extras=extras,
        )
        self.log(
            f"{self.framework} {self.optimizer} stopped ({stop_reason}) after {result.epochs} "
            f"epochs in {result.seconds:.2f} s on {device[0]} ({device[1]}): train mse "
            f"{self.train_loss[-1]:.6g}, validation mse {self.val_loss[-1]:.6g}"
        )
        return result

    def _check_divergence(
        self, epoch: int, cost: float, val_mse: float, params: np.ndarray
    ) -> None:
        # A full-sample fit has no validation rows, so its validation MSE (a mean over nothing)
        # is NaN by construction; an infinite one still means the fit blew up.
        val_ok = math.isfinite(val_mse) or math.isnan(val_mse)
        finite = math.isfinite(cost) and val_ok and np.isfinite(params).all()
        if finite and cost <= EXPLOSION_FACTOR * max(self.start_cost, 1e-12):
            return
        if self.learning_rate is None:
            advice = (
                f"set {setting_name(self.framework, 'dtype')}='float64' "
                "or check the training data for extreme values"
            )
        else:
            advice = (
                f"lower {setting_name(self.framework, 'learning_rate')} "
                f"(now {self.learning_rate:g})"
            )
        raise TrainingDivergedError(
            f"{self.framework} training with optimizer {self.optimizer!r} diverged at epoch "
            f"{epoch} (training cost {cost:.3g}, {self.start_cost:.3g} at the start): {advice}"
        )

    def _log_progress(self, epoch: int, train_mse: float, val_mse: float) -> None:
        # The first epoch, then at most one line per PROGRESS_EVERY_S: a long fit shows it is
        # moving (a person waits at most a few seconds for a line), a short one stays quiet.
        now = time.perf_counter()
        if epoch == 1 or now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            self.log(
                f"{self.framework} {self.optimizer} epoch {epoch}/{self.max_epochs}: "
                f"train mse {train_mse:.6g}, validation mse {val_mse:.6g}"
            )


def minimize_conjugate_gradient(
    value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    validation_mse: Callable[[np.ndarray], float],
    size: int,
    l2: float,
    tracker: EpochTracker,
) -> tuple[np.ndarray, str, int]:
    """Linear conjugate gradient on the quadratic cost; returns (params, stop_reason, gradients).

    value_and_grad(params) is the framework's autograd cost and gradient. The Hessian is never
    formed: the gradient is affine, so H p = grad(w + p) - grad(w) for any w. Taking w = 0 (whose
    gradient is computed once, exactly) and a unit-length p keeps both gradients O(1), so their
    difference loses no digits however short the step; each epoch costs one gradient. The cost
    at the exact line minimum follows from the quadratic's Taylor expansion. The (size,)-long
    direction algebra runs in numpy: it is tiny.
    """
    params = np.zeros(size)
    cost, origin_grad = value_and_grad(params)
    tracker.start(cost)
    grad = origin_grad
    direction, gradients = -grad, 1
    while True:
        length = float(np.linalg.norm(direction))
        unit = direction / length if length > 0 else direction
        hessian_direction = (value_and_grad(unit)[1] - origin_grad) * length
        gradients += 1
        curvature = float(direction @ hessian_direction)
        slope = float(grad @ direction)
        # Zero or negative curvature can only be round-off once the gradient has vanished.
        step = -slope / curvature if curvature > 0 else 0.0
        params = params + step * direction
        new_grad = grad + step * hessian_direction
        cost = cost + step * slope + 0.5 * step * step * curvature
        penalty = l2 * float(params[:-1] @ params[:-1])
        stop = tracker.record(params, cost - penalty, validation_mse(params), cost)
        if stop is None and step == 0.0:  # the gradient vanished: nothing left to improve
            stop = "converged"
        if stop is not None:
            return tracker.final_params(params, stop), stop, gradients
        # Polak-Ribiere (clipped at 0) equals Fletcher-Reeves in exact arithmetic but restarts
        # itself when round-off has cost the directions their conjugacy.
        beta = max(0.0, float(new_grad @ (new_grad - grad)) / max(float(grad @ grad), 1e-300))
        grad, direction = new_grad, -new_grad + beta * direction
