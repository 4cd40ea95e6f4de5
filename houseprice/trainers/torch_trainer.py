"""PyTorch trainer: a linear model fitted by torch.autograd gradients, plus its save and load.

Imports torch, numpy and the numpy-only common, design and streamed modules (settings are typed,
never imported), so benchmarks/gpu_check.py runs it on a GPU box that has nothing else installed.
It trains in memory (train_torch) or from data on disk (torch_chunk_statistics, then
train_torch_from_statistics).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import pickle
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from houseprice.trainers import SavedModel, common, streamed
from houseprice.trainers.common import (
    EpochTracker,
    Log,
    TrainingData,
    TrainResult,
    setting_name,
)
from houseprice.trainers.design import GramStatistics

if TYPE_CHECKING:
    from houseprice.config import TrainerConfig

FRAMEWORK = "torch"
logger = logging.getLogger(__name__)


class _Tensors(NamedTuple):
    """The training data on the training device: x (rows, d), y (rows,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


def train_torch(
    data: TrainingData, settings: TrainerConfig, seed: int, log: Log | None = None
) -> TrainResult:
    """Fit y = x @ w + b by minimizing MSE (+ l2 * |w|^2) with torch.autograd gradients."""
    started = time.perf_counter()
    device, device_name = resolve_torch_device(settings.device)
    dtype, extras = _resolve_dtype(settings.dtype, device)
    tracker = EpochTracker.for_settings(FRAMEWORK, settings, log or logger.info)
    with _torch_threads(settings.threads):
        tensors = _to_tensors(data, device, dtype)
        if settings.optimizer == "cg":
            params, stop_reason, gradients = common.minimize_conjugate_gradient(
                _cost_and_gradient(tensors.x_train, tensors.y_train, settings.l2),
                _mse_at(tensors.x_val, tensors.y_val),
                data.x_train.shape[1] + 1,
                settings.l2,
                tracker,
            )
            extras["gradient_evaluations"] = gradients
        else:
            params, stop_reason = _minimize_minibatch(tensors, settings, seed, tracker)
    extras["threads"] = settings.threads
    return tracker.to_result(params, stop_reason, (str(device), device_name), started, extras)


def torch_chunk_statistics(x: np.ndarray, y: np.ndarray, settings: TrainerConfig) -> GramStatistics:
    """One chunk's Zᵀ Z, Zᵀ y, yᵀ y and rows (z = [x, 1]), reduced by torch on its device.

    Always float64, whatever settings.dtype: Zᵀ Z squares the condition number (streamed.py).
    """
    device, _, _ = _statistics_device(settings.device)
    with _torch_threads(settings.threads):
        # as_tensor shares the chunk's memory on the CPU (a strided view of the file's block).
        x_t, y_t = (torch.as_tensor(a).to(device=device, dtype=torch.float64) for a in (x, y))
        reductions = (x_t.T @ x_t, x_t.sum(0), x_t.T @ y_t, y_t.sum(), y_t.dot(y_t))
        xtx, x_sum, xty, y_sum, yy = (r.cpu().numpy() for r in reductions)
    return streamed.gram_from_blocks(xtx, x_sum, xty, float(y_sum), float(yy), len(y))


def train_torch_from_statistics(
    train: GramStatistics,
    validation: GramStatistics,
    settings: TrainerConfig,
    seed: int,
    log: Log | None = None,
) -> TrainResult:
    """Fit from summed statistics: train_torch's cost written from Zᵀ Z, Zᵀ y, yᵀ y.

    seed is unused: every step is full-batch, so nothing is drawn.
    """
    started = time.perf_counter()
    device, device_name, extras = _statistics_device(settings.device)
    tracker = EpochTracker.for_settings(FRAMEWORK, settings, log or logger.info)
    with _torch_threads(settings.threads):
        params, stop_reason, fit_extras = streamed.minimize_from_statistics(
            functools.partial(_statistics_cost, device=device), train, validation, settings, tracker
        )
    extras.update(fit_extras)
    return tracker.to_result(params, stop_reason, (str(device), device_name), started, extras)


def _statistics_device(requested: str) -> tuple[torch.device, str, dict[str, float | int | str]]:
    """The device for statistics and fits from them: MPS has no float64, so the CPU there."""
    device, name = resolve_torch_device(requested)
    if device.type != "mps":
        return device, name, {}
    fallback = "MPS has no float64: statistics and the fit from them ran on the CPU"
    return torch.device("cpu"), common.describe_cpu(), {"device_fallback": fallback}


def _statistics_cost(
    statistics: GramStatistics, l2: float, device: torch.device
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """MSE + l2 * |w|^2 from the statistics, and its autograd gradient, at numpy parameters."""
    zz, zy = (torch.from_numpy(a).to(device) for a in (statistics.zz, statistics.zy))

    def cost_and_gradient(params_np: np.ndarray) -> tuple[float, np.ndarray]:
        params = torch.tensor(params_np, dtype=torch.float64, device=device, requires_grad=True)
        weights = params[:-1]
        # (θᵀ zz θ − 2 θᵀ zy + yy) / rows: the sum of squared residuals without the rows.
        squares = params.dot(zz.mv(params)) - 2 * params.dot(zy) + statistics.yy
        cost = squares / statistics.rows + l2 * weights.dot(weights)
        (gradient,) = torch.autograd.grad(cost, params)
        return cost.item(), gradient.cpu().numpy()

    return cost_and_gradient


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """torch's CPU threads set for a block: the setting is process-wide, so restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_torch_device(requested: str) -> tuple[torch.device, str]:
    """Map 'auto'/'cpu'/'cuda'/'mps' to an available torch device and its human-readable name."""
    mps_available = torch.backends.mps.is_available()
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "mps" if mps_available else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise common.DeviceUnavailableError(
                f"{setting_name(FRAMEWORK, 'device')} is 'cuda' but torch {torch.__version__} "
                "sees no CUDA GPU here; set it to 'auto' or 'cpu'"
            )
        index = torch.cuda.current_device()
        return torch.device("cuda", index), torch.cuda.get_device_name(index)
    if requested == "mps":
        if not mps_available:
            raise common.DeviceUnavailableError(
                f"{setting_name(FRAMEWORK, 'device')} is 'mps' but this machine has no Apple "
                "GPU that torch can use; set it to 'auto' or 'cpu'"
            )
        return torch.device("mps"), "Apple GPU (MPS)"
    if requested != "cpu":
        raise common.DeviceUnavailableError(
            f"unknown {setting_name(FRAMEWORK, 'device')} {requested!r}"
        )
    return torch.device("cpu"), common.describe_cpu()


def _resolve_dtype(
    requested: str, device: torch.device
) -> tuple[torch.dtype, dict[str, float | int | str]]:
    """The torch dtype to train in; MPS has no float64, so it falls back to float32 there."""
    if device.type == "mps" and requested == "float64":
        return torch.float32, {"dtype": "float32", "dtype_fallback": "MPS has no float64"}
    return getattr(torch, requested), {"dtype": requested}


def _to_tensors(data: TrainingData, device: torch.device, dtype: torch.dtype) -> _Tensors:
    """Wrap the numpy arrays without copying when dtype and device allow (float64 on CPU)."""

    def convert(array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        return tensor.to(device=device, dtype=dtype)

    return _Tensors(*(convert(array) for array in data))


def _cost_and_gradient(
    x: torch.Tensor, y: torch.Tensor, l2: float
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """The full-batch cost MSE + l2 * |w|^2 and its autograd gradient, at numpy parameters."""
    features = x.shape[1]

    def cost_and_gradient(params_np: np.ndarray) -> tuple[float, np.ndarray]:
        params = torch.tensor(params_np, dtype=x.dtype, device=x.device, requires_grad=True)
        cost = _cost(x, y, params, features, l2)
        (gradient,) = torch.autograd.grad(cost, params)
        return cost.item(), gradient.cpu().numpy().astype(np.float64)

    return cost_and_gradient


def _cost(
    x: torch.Tensor, y: torch.Tensor, params: torch.Tensor, features: int, l2: float
) -> torch.Tensor:
    """MSE of x @ w + b against y, plus the ridge penalty on w (never on b)."""
    # addmv fuses the bias, the product and the subtraction into one pass over x.
    residual = torch.addmv(params[features] - y, x, params[:features])
    weights = params[:features]
    return residual.dot(residual) / x.shape[0] + l2 * weights.dot(weights)


def _mse_at(x: torch.Tensor, y: torch.Tensor) -> Callable[[np.ndarray], float]:
    """The MSE at numpy parameters, without building an autograd graph."""
    features = x.shape[1]

    def mse_at(params_np: np.ndarray) -> float:
        params = torch.as_tensor(params_np, dtype=x.dtype, device=x.device)
        with torch.no_grad():
            return _cost(x, y, params, features, 0.0).item()

    return mse_at


def _minimize_minibatch(
    tensors: _Tensors, settings: TrainerConfig, seed: int, tracker: EpochTracker
) -> tuple[np.ndarray, str]:
    """Mini-batch Adam or SGD over seeded shuffles; one epoch is one pass over the rows."""
    x, y = tensors.x_train, tensors.y_train
    rows, features = x.shape
    params = torch.zeros(features + 1, dtype=x.dtype, device=x.device, requires_grad=True)
    moments = (torch.zeros_like(params), torch.zeros_like(params))
    full_mse = _mse_at(x, y)
    validation_mse = _mse_at(tensors.x_val, tensors.y_val)
    tracker.start(full_mse(np.zeros(features + 1)))
    # numpy draws the order so both frameworks see the same batches for the same seed.
    generator = np.random.default_rng(seed)
    step = 0
    while True:
        order = torch.from_numpy(generator.permutation(rows)).to(x.device)
        for batch in order.split(settings.batch_size):
            cost = _cost(
                x.index_select(0, batch), y.index_select(0, batch), params, features, settings.l2
            )
            (gradient,) = torch.autograd.grad(cost, params)
            step += 1
            with torch.no_grad():
                if settings.optimizer == "adam":
                    _adam_update(params, gradient, moments, step, tracker.learning_rate)
                else:
                    params.sub_(gradient, alpha=tracker.learning_rate)
        current = params.detach().cpu().numpy().astype(np.float64)
        train_mse = full_mse(current)
        penalty = settings.l2 * float(current[:-1] @ current[:-1])
        stop = tracker.record(current, train_mse, validation_mse(current), train_mse + penalty)
        if stop is not None:
            return tracker.final_params(current, stop), stop


def _adam_update(
    params: torch.Tensor,
    gradient: torch.Tensor,
    moments: tuple[torch.Tensor, torch.Tensor],
    step: int,
    learning_rate: float,
) -> None:
    """One Adam step in place, torch.optim.Adam's formula written out.

    Written out rather than torch.optim.Adam because the first optimizer.step() imports
    torch._dynamo (about 1.5 s per process), and so both frameworks share one formula.
    """
    beta1, beta2 = common.ADAM_BETAS
    first, second = moments
    first.mul_(beta1).add_(gradient, alpha=1 - beta1)
    second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
    denominator = (second / (1 - beta2**step)).sqrt_().add_(common.ADAM_EPSILON)
    params.addcdiv_(first, denominator, value=-learning_rate / (1 - beta1**step))


def _linear_module(result: TrainResult) -> torch.nn.Linear:
    """The fitted model as torch.nn.Linear(d, 1) in float64, on the CPU."""
    features = result.weights.shape[0]
    layer = torch.nn.Linear(features, 1, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.asarray(result.weights, dtype=np.float64))[None])
        layer.bias.fill_(result.bias)
    return layer.eval()


def save_torch_model(result: TrainResult, path: Path) -> None:
    """Save the model's state_dict (weight (1, d), bias (1,)); storage makes the write atomic."""
    torch.save(_linear_module(result).state_dict(), path)


def load_torch_model(path: Path) -> torch.nn.Linear:
    """Load a state_dict saved by save_torch_model, refusing anything but a (d -> 1) Linear."""
    common.check_zip_archive("torch model", Path(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # weights_only met something other than tensors
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        what = f"a {found.group(1)} object" if found else "objects other than tensors"
        problem = ValueError(f"it holds {what}, which loading with weights_only refuses")
        raise common.describe_load_failure("torch model", path, problem) from None
    except Exception as error:  # torch raises a different type for each way a file is broken
        raise common.describe_load_failure("torch model", path, error) from None
    weight, bias = _check_state(state, path)
    layer = torch.nn.Linear(weight.shape[1], 1, dtype=weight.dtype)
    layer.load_state_dict({"weight": weight, "bias": bias})
    return layer.eval()


def read_torch_model(path: Path) -> SavedModel:
    """The saved model as torch scores it, with its weights for numpy scoring."""
    module = load_torch_model(path)
    dtype = module.weight.dtype

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x).to(dtype)).numpy()[:, 0].astype("float64")

    weights = module.weight.detach().double().numpy()[0].copy()
    return SavedModel(forward, weights, float(module.bias.detach().double().item()))


def _check_state(state: object, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of a state_dict, or ModelLoadError saying what is wrong with it."""
    if not isinstance(state, dict) or set(state) != {"weight", "bias"}:
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        problem = f"expected a state_dict with 'weight' and 'bias', found {keys}"
    else:
        weight, bias = state["weight"], state["bias"]
        if not all(isinstance(t, torch.Tensor) and t.is_floating_point() for t in (weight, bias)):
            problem = "weight and bias must be floating-point tensors"
        elif weight.ndim != 2 or weight.shape[0] != 1 or tuple(bias.shape) != (1,):
            shapes = f"{tuple(weight.shape)} and {tuple(bias.shape)}"
            problem = f"expected weight (1, d) and bias (1,), found {shapes}"
        elif not (torch.isfinite(weight).all() and torch.isfinite(bias).all()):
            problem = "weight or bias holds NaN or infinite values"
        else:
            return weight, bias.to(weight.dtype)
    raise common.describe_load_failure("torch model", path, ValueError(problem))
