"""TensorFlow's stand-alone export: raw columns in, price out, as a SavedModel folder.

Imports tensorflow, numpy and the trainers' common module only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from houseprice.exports import Scorer, input_names
from houseprice.trainers.common import TrainResult, describe_load_failure, export_view

if TYPE_CHECKING:
    from houseprice.preprocessing import Preprocessor


class _PriceModule(tf.Module):
    """Raw columns → price: impute, one-hot, scale, the linear model, then the inverse target."""

    def __init__(self, result: TrainResult, prep: Preprocessor) -> None:
        super().__init__()
        # Inputs by their export names: a signature refuses "Lot Area" (houseprice/exports.py).
        names = input_names(prep)
        self.numeric = [names[c] for c in prep.numeric_features]
        self.categorical = [names[c] for c in prep.categorical_features]
        self.medians = tf.constant([prep.medians[c] for c in prep.numeric_features], tf.float64)
        self.levels = {
            names[c]: tf.constant(prep.levels[c], tf.string) for c in prep.categorical_features
        }
        self.means = tf.constant(prep.means, tf.float64)
        self.scales = tf.constant(prep.scales, tf.float64)
        self.kernel = tf.constant(np.asarray(result.weights)[:, None], tf.float64)
        self.bias = tf.constant([result.bias], tf.float64)
        self.target = (prep.price_offset, prep.target_scale, prep.log_target)
        signature = {c: tf.TensorSpec([None], tf.float64, name=c) for c in self.numeric}
        signature |= {c: tf.TensorSpec([None], tf.string, name=c) for c in self.categorical}
        self.serve = tf.function(self._price, input_signature=[signature])

    def _price(self, columns: dict[str, tf.Tensor]) -> tf.Tensor:
        blocks = []
        if self.numeric:
            numbers = tf.stack([columns[c] for c in self.numeric], axis=1)
            blocks.append(tf.where(tf.math.is_nan(numbers), self.medians, numbers))
        for column in self.categorical:
            same = tf.equal(columns[column][:, None], self.levels[column][None, :])
            blocks.append(tf.cast(same, tf.float64))
        design = (tf.concat(blocks, axis=1) - self.means) / self.scales
        scaled = (tf.matmul(design, self.kernel) + self.bias)[:, 0]  # as keras Dense computes it
        target_mean, target_scale, log_target = self.target
        values = scaled * target_scale + target_mean
        return tf.exp(values) if log_target else values


def export_tensorflow_model(result: TrainResult, prep: Preprocessor, path: Path) -> None:
    """Export raw columns → price as a SavedModel folder; call .serve({column: values})."""
    result, prep = export_view(result, prep)
    module = _PriceModule(result, prep)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


def load_tensorflow_export(path: Path) -> Any:
    """Load a SavedModel written by export_tensorflow_model; call .serve(x) on the result."""
    try:
        restored = tf.saved_model.load(str(path))
    except Exception as error:  # a broken SavedModel fails deep inside the loader
        raise describe_load_failure("tensorflow SavedModel", path, error) from None
    if not hasattr(restored, "serve"):
        raise describe_load_failure(
            "tensorflow SavedModel", path, ValueError("it has no 'serve' endpoint")
        )
    return restored


def tensorflow_export_scorer(path: Path) -> Scorer:
    """The SavedModel as a function of raw columns (categories as strings) to prices."""
    restored = load_tensorflow_export(path)
    return lambda columns: restored.serve(columns).numpy()
