"""TensorFlow trainer: a linear model fitted by tf.GradientTape gradients, plus save and load.

Imports tensorflow (with its keras), numpy and the numpy-only common, design and streamed
modules; settings are typed, never imported. It trains in memory (train_tensorflow) or from data
on disk (tensorflow_chunk_statistics, then train_tensorflow_from_statistics).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from houseprice.trainers import SavedModel, streamed
from houseprice.trainers.common import (
    ADAM_BETAS,
    ADAM_EPSILON,
    DeviceUnavailableError,
    EpochTracker,
    Log,
    TrainingData,
    TrainResult,
    check_zip_archive,
    describe_cpu,
    describe_load_failure,
    minimize_conjugate_gradient,
    setting_name,
)
from houseprice.trainers.design import GramStatistics

if TYPE_CHECKING:
    from houseprice.config import TrainerConfig

FRAMEWORK = "tensorflow"
logger = logging.getLogger(__name__)


def train_tensorflow(
    data: TrainingData, settings: TrainerConfig, seed: int, log: Log | None = None
) -> TrainResult:
    """Fit y = x @ w + b by minimizing MSE (+ l2 * |w|^2) with tf.GradientTape gradients."""
    started = time.perf_counter()
    log = log or logger.info
    configure_tensorflow(settings.threads, log)
    device = resolve_tensorflow_device(settings.device)
    tracker = EpochTracker.for_settings(FRAMEWORK, settings, log)
    extras: dict[str, float | int | str] = {"dtype": settings.dtype, "threads": settings.threads}
    with tf.device(device[0]):
        x, y, x_val, y_val = (tf.convert_to_tensor(a, dtype=settings.dtype) for a in data)
        if settings.optimizer == "cg":
            params, stop_reason, gradients = minimize_conjugate_gradient(
                _cost_and_gradient_at(x, y, settings.l2),
                functools.partial(_mse_at, x_val, y_val),
                data.x_train.shape[1] + 1,
                settings.l2,
                tracker,
            )
            extras["gradient_evaluations"] = gradients
        else:
            params, stop_reason = _minimize_minibatch((x, y, x_val, y_val), settings, seed, tracker)
    return tracker.to_result(params, stop_reason, device, started, extras)


def tensorflow_chunk_statistics(
    x: np.ndarray, y: np.ndarray, settings: TrainerConfig
) -> GramStatistics:
    """One chunk's Zᵀ Z, Zᵀ y, yᵀ y and rows (z = [x, 1]), reduced by TensorFlow on its device.

    Always float64, whatever settings.dtype: Zᵀ Z squares the condition number (streamed.py).
    """
    configure_tensorflow(settings.threads, logger.debug)  # quiet: it runs once per chunk
    with tf.device(resolve_tensorflow_device(settings.device)[0]):
        x_t, y_t = (tf.convert_to_tensor(a, dtype=tf.float64) for a in (x, y))
        reductions = (
            tf.linalg.matmul(x_t, x_t, transpose_a=True),
            tf.reduce_sum(x_t, axis=0),
            tf.linalg.matvec(x_t, y_t, transpose_a=True),
            tf.reduce_sum(y_t),
            tf.tensordot(y_t, y_t, 1),
        )
        xtx, x_sum, xty, y_sum, yy = (r.numpy() for r in reductions)
    return streamed.gram_from_blocks(xtx, x_sum, xty, float(y_sum), float(yy), len(y))


def train_tensorflow_from_statistics(
    train: GramStatistics,
    validation: GramStatistics,
    settings: TrainerConfig,
    seed: int,
    log: Log | None = None,
) -> TrainResult:
    """Fit from summed statistics: train_tensorflow's cost written from Zᵀ Z, Zᵀ y, yᵀ y.

    seed is unused: every step is full-batch, so nothing is drawn.
    """
    started = time.perf_counter()
    log = log or logger.info
    configure_tensorflow(settings.threads, log)
    device = resolve_tensorflow_device(settings.device)
    tracker = EpochTracker.for_settings(FRAMEWORK, settings, log)
    with tf.device(device[0]):
        params, stop_reason, extras = streamed.minimize_from_statistics(
            _statistics_cost_at, train, validation, settings, tracker
        )
    return tracker.to_result(params, stop_reason, device, started, extras)


def configure_tensorflow(threads: int, log: Callable[[str], None]) -> None:
    """Turn on GPU memory growth and cap the thread pools, where TF still allows it."""
    # Growth instead of grabbing the whole GPU, so torch can share it in the same process.
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as error:  # raised once the GPU is initialized; growth stays as set
            log(f"tensorflow memory growth for {gpu.name} unchanged: {error}")
    threading = tf.config.threading
    if threading.get_intra_op_parallelism_threads() == threads:
        return
    try:
        threading.set_intra_op_parallelism_threads(threads)
        threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as error:  # TF fixes its pools when its runtime starts
        log(
            f"tensorflow keeps its thread pools ({error}): "
            f"{setting_name(FRAMEWORK, 'threads')}={threads} applies only to a fresh process"
        )


def resolve_tensorflow_device(requested: str) -> tuple[str, str]:
    """Map 'auto'/'cpu'/'cuda' to a TF device string and its human-readable name."""
    gpus = tf.config.list_physical_devices("GPU")
    if requested == "mps":
        raise DeviceUnavailableError(
            f"{setting_name(FRAMEWORK, 'device')} 'mps' is for torch only; use 'auto' or 'cpu'"
        )
    if requested == "cuda" and not gpus:
        raise DeviceUnavailableError(
            f"{setting_name(FRAMEWORK, 'device')} is 'cuda' but TensorFlow {tf.__version__} "
            "sees no GPU here (tensorflow-cpu has no GPU support); set it to 'auto' or 'cpu'"
        )
    if requested in ("auto", "cuda") and gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return "/GPU:0", str(details.get("device_name", "GPU"))
    if requested not in ("auto", "cpu"):
        raise DeviceUnavailableError(f"unknown {setting_name(FRAMEWORK, 'device')} {requested!r}")
    return "/CPU:0", describe_cpu()


def _cost(x: tf.Tensor, y: tf.Tensor, params: tf.Tensor, l2: tf.Tensor) -> tf.Tensor:
    """MSE of x @ w + b against y, plus the ridge penalty on w (never on b)."""
    features = tf.shape(x)[1]
    weights = params[:features]
    residual = tf.linalg.matvec(x, weights) + params[features] - y
    return tf.reduce_mean(tf.square(residual)) + l2 * tf.reduce_sum(tf.square(weights))


# Module-level compiled functions taking the data as arguments: traced once per process and
# dtype, not once per fit, since tracing costs more than a whole epoch on small data.
@tf.function(reduce_retracing=True)
def _cost_and_gradient(x, y, params, l2):
    """The full-batch cost and its GradientTape gradient."""
    with tf.GradientTape() as tape:
        tape.watch(params)
        cost = _cost(x, y, params, l2)
    return cost, tape.gradient(cost, params)


@tf.function(reduce_retracing=True)
def _mse(x, y, params):
    """The MSE at given parameters, with no tape."""
    return _cost(x, y, params, tf.zeros((), x.dtype))


@tf.function(reduce_retracing=True)
def _run_epoch(x, y, order, state, steps, learning_rate, l2, batch_size, adam):
    """One epoch of Adam (torch.optim.Adam's update) or plain SGD over batches of order."""
    params, first_moment, second_moment = state
    beta1, beta2 = (tf.constant(beta, x.dtype) for beta in ADAM_BETAS)
    for start in tf.range(0, tf.shape(order, out_type=tf.int64)[0], batch_size):
        batch = order[start : start + batch_size]
        with tf.GradientTape() as tape:
            cost = _cost(tf.gather(x, batch), tf.gather(y, batch), params, l2)
        gradient = tape.gradient(cost, params)
        if adam:  # a Python bool: each optimizer gets its own trace
            steps.assign_add(1)
            step = tf.cast(steps, x.dtype)
            first_moment.assign(beta1 * first_moment + (1 - beta1) * gradient)
            second_moment.assign(beta2 * second_moment + (1 - beta2) * tf.square(gradient))
            corrected = tf.sqrt(second_moment / (1 - beta2**step)) + ADAM_EPSILON
            params.assign_sub(learning_rate / (1 - beta1**step) * first_moment / corrected)
        else:
            params.assign_sub(learning_rate * gradient)


def _minimize_minibatch(
    tensors: tuple[tf.Tensor, ...], settings: TrainerConfig, seed: int, tracker: EpochTracker
) -> tuple[np.ndarray, str]:
    """Mini-batch Adam or SGD over seeded shuffles; each epoch runs as one compiled loop."""
    x, y, x_val, y_val = tensors
    rows, features = x.shape
    dtype = x.dtype
    state = [tf.Variable(tf.zeros(features + 1, dtype=dtype)) for _ in range(3)]
    steps = tf.Variable(0, dtype=tf.int64)
    constants = [tf.constant(value, dtype) for value in (tracker.learning_rate, settings.l2)]
    batch_size = tf.constant(settings.batch_size, tf.int64)
    tracker.start(_mse_at(x, y, np.zeros(features + 1)))
    # numpy draws the order so both frameworks see the same batches for the same seed.
    generator = np.random.default_rng(seed)
    while True:
        order = tf.constant(generator.permutation(rows))
        _run_epoch(x, y, order, state, steps, *constants, batch_size, settings.optimizer == "adam")
        current = state[0].numpy().astype(np.float64)
        train_mse = _mse_at(x, y, current)
        penalty = settings.l2 * float(current[:-1] @ current[:-1])
        stop = tracker.record(
            current, train_mse, _mse_at(x_val, y_val, current), train_mse + penalty
        )
        if stop is not None:
            return tracker.final_params(current, stop), stop


def _mse_at(x: tf.Tensor, y: tf.Tensor, params: np.ndarray) -> float:
    """The MSE at numpy parameters, as a Python float."""
    return float(_mse(x, y, tf.constant(params, x.dtype)))


def _cost_and_gradient_at(
    x: tf.Tensor, y: tf.Tensor, l2: float
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """The cost and gradient as the numpy-side conjugate gradient wants them."""
    penalty = tf.constant(l2, x.dtype)

    def cost_and_gradient(params: np.ndarray) -> tuple[float, np.ndarray]:
        cost, gradient = _cost_and_gradient(x, y, tf.constant(params, x.dtype), penalty)
        return float(cost), gradient.numpy().astype(np.float64)

    return cost_and_gradient


@tf.function(reduce_retracing=True)
def _statistics_cost_and_gradient(zz, zy, yy, rows, params, l2):
    """MSE + l2 * |w|^2 from the statistics, and its GradientTape gradient."""
    with tf.GradientTape() as tape:
        tape.watch(params)
        weights = params[:-1]
        # (θᵀ zz θ − 2 θᵀ zy + yy) / rows: the sum of squared residuals without the rows.
        squares = tf.tensordot(params, tf.linalg.matvec(zz, params), 1)
        squares += yy - 2 * tf.tensordot(params, zy, 1)
        cost = squares / rows + l2 * tf.reduce_sum(tf.square(weights))
    return cost, tape.gradient(cost, params)


def _statistics_cost_at(
    statistics: GramStatistics, l2: float
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """The cost and gradient from statistics, at numpy parameters (on the enclosing device)."""
    zz, zy, yy, rows, penalty = (
        tf.constant(value, tf.float64)
        for value in (statistics.zz, statistics.zy, statistics.yy, statistics.rows, l2)
    )

    def cost_and_gradient(params: np.ndarray) -> tuple[float, np.ndarray]:
        at = tf.constant(params, tf.float64)
        cost, gradient = _statistics_cost_and_gradient(zz, zy, yy, rows, at, penalty)
        return float(cost), gradient.numpy()

    return cost_and_gradient


def _keras_model(features: int) -> keras.Sequential:
    """The linear model as Keras layers, in float64 so a reload predicts exactly the same."""
    return keras.Sequential(
        [keras.Input((features,), dtype="float64"), keras.layers.Dense(1, dtype="float64")]
    )


def _fitted_keras_model(result: TrainResult) -> keras.Sequential:
    """A Keras model holding the result's weights and bias."""
    features = result.weights.shape[0]
    model = _keras_model(features)
    model.layers[-1].set_weights([result.weights.reshape(features, 1), np.array([result.bias])])
    return model


def save_keras_model(result: TrainResult, path: Path) -> None:
    """Save as a .keras file (the name must end in .keras); storage makes the write atomic."""
    _fitted_keras_model(result).save(path)


def load_keras_model(path: Path) -> keras.Model:
    """Load a .keras file saved by save_keras_model, refusing anything but one Dense(1) layer."""
    check_zip_archive("keras model", Path(path))
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises a different type for each way a file is broken
        raise describe_load_failure("keras model", path, error) from None
    kernels = [weight.shape for weight in model.weights]
    if len(kernels) != 2 or len(kernels[0]) != 2 or kernels[0][1] != 1 or kernels[1] != (1,):
        raise describe_load_failure(
            "keras model", path, ValueError(f"expected one Dense(1) layer, found weights {kernels}")
        )
    if not all(np.isfinite(weight.numpy()).all() for weight in model.weights):
        raise describe_load_failure("keras model", path, ValueError("weights hold NaN or inf"))
    return model


def read_keras_model(path: Path) -> SavedModel:
    """The saved model as Keras scores it, with its weights for numpy scoring."""
    model = load_keras_model(path)
    kernel, bias = (np.asarray(w.numpy(), dtype=np.float64) for w in model.weights)

    def forward(x: np.ndarray) -> np.ndarray:
        return np.asarray(model(x, training=False), dtype="float64")[:, 0]

    return SavedModel(forward, kernel[:, 0].copy(), float(bias[0]))
