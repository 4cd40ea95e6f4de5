"""Cross-validation: repeated k-fold refits of the exact optimum, for runs with few test rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from houseprice.config import EvaluationConfig
from houseprice.tasks.features import FeatureSet, refit_preprocessor
from houseprice.tasks.regression import RegressionMetrics, fit_least_squares, regression_metrics
from houseprice.tasks.statistics import fold_assignments

# Rows × repeats the cross-validation may refit on. Each fold refits the preprocessing (pandas,
# about 0.1 s for 3,000 rows) and a least-squares fit, so above 3,000 rows fewer repeats run (at
# least one): repeats average out the luck of the fold assignment, which matters on small data.
CV_ROW_BUDGET = 30_000


def cross_validate(
    features: FeatureSet, penalties: list[float], settings: EvaluationConfig
) -> tuple[dict[float, RegressionMetrics], dict[str, Any]]:
    """Repeated k-fold cross-validation of the exact optimum of each cost (ridge penalty l2).

    Every row of the data (all parts) is held out once per repeat. In each fold the whole
    preprocessing is refitted on the other folds, as a run would, and the exact least-squares
    (or ridge) solution predicts the held-out rows in price units. Each repeat's pooled
    out-of-fold predictions give RMSE, MAE, R², MAPE; returned: their mean per penalty, and
    the settings with the spread (standard deviation over repeats).
    """
    rows = pd.concat(list(features.split), ignore_index=True)
    actual = rows[features.preprocessor.target].astype("float64").to_numpy()
    folds = min(settings.cv_folds, len(rows))
    repeats = min(settings.cv_repeats, max(1, CV_ROW_BUDGET // max(len(rows), 1)))
    runs: dict[float, list[RegressionMetrics]] = {l2: [] for l2 in penalties}
    for assignment in fold_assignments(len(rows), folds, repeats, settings.cv_seed):
        predicted = {l2: np.empty(len(rows)) for l2 in penalties}
        for fold in range(folds):
            held = assignment == fold
            kept = rows[~held]
            prep = refit_preprocessor(kept, features)
            x, y = prep.transform(kept), prep.transform_target(kept[prep.target])
            x_held = prep.transform(rows[held])
            for l2 in penalties:
                model = fit_least_squares(x, y, l2)
                predicted[l2][held] = prep.inverse_target(model.predict(x_held))
        for l2 in penalties:
            runs[l2].append(regression_metrics(actual, predicted[l2]))
    means = {l2: RegressionMetrics(*np.mean(runs[l2], axis=0).tolist()) for l2 in penalties}
    spread = {
        f"l2={l2:g}": RegressionMetrics(*np.std(runs[l2], axis=0).tolist())._asdict()
        for l2 in penalties
    }
    summary = {"folds": folds, "repeats": repeats, "rows": len(rows), "seed": settings.cv_seed}
    return means, {**summary, "spread_over_repeats": spread}
