"""Statistics of the least-squares reference: the regression table, aliased columns, and CV.

Pure numpy/scipy functions, no Prefect: the regression table a statistician reads (classical
and heteroskedasticity-robust standard errors), the detection of design columns that carry no
information of their own, and repeated k-fold cross-validation for data too small to judge a
model on one held-out part. tests/test_statistics.py checks the table against statsmodels.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from houseprice.errors import SourceError

# A design column whose variance left unexplained by the intercept and the columns before it is
# below this share of its own variance is aliased (variance inflation above 1e9): its
# coefficient is not identifiable in float64, whatever the standard errors would claim.
ALIAS_TOLERANCE = 1e-9
# Largest share of a kept column in an aliased one worth naming (standardized units).
_NAMED_SHARE = 1e-6
# A column whose spread is below this share of its size (root mean square) is constant: float64
# holds 16 digits, so such a spread keeps fewer than five of its own and is noise around a
# constant (0.1 + 0.2 beside 0.3). Relative to the spread, not the variance against Σx²: zip
# codes 50010-50014 (spread 3e-5 of their size), yyyymm months (2e-5) and epoch seconds (5e-4)
# vary, and a test against the uncentred Σx² at ALIAS_TOLERANCE would call them constant.
CONSTANT_RELATIVE_SPREAD = 1e-11


def find_aliased_columns(
    design: np.ndarray, names: list[str], tolerance: float = ALIAS_TOLERANCE
) -> dict[str, str]:
    """Design columns that are (near) linear combinations of the intercept and earlier columns.

    Deterministic: columns are taken in design order and a column is kept unless the ones kept
    before it (and the intercept) explain it, so of two aliased columns the later one goes.
    Returns {column: why}, in design order.
    """
    centered = design - design.mean(axis=0)
    magnitude = np.einsum("ij,ij->j", design, design)
    return aliased_columns_from_gram(centered.T @ centered, magnitude, names, tolerance)


def aliased_columns_from_gram(
    centered_gram: np.ndarray,
    magnitude: np.ndarray,
    names: list[str],
    tolerance: float = ALIAS_TOLERANCE,
) -> dict[str, str]:
    """find_aliased_columns' decision from the design's statistics instead of its rows.

    centered_gram is Σ (x − mean)(x − mean)ᵀ over the rows (columns × columns) and magnitude
    each column's Σ x²; a streamed design accumulates both chunk by chunk, so the in-memory
    and the streamed features stage drop the same columns for the same reasons.
    """
    variance = np.diag(centered_gram)
    aliased: dict[str, str] = {}
    constant = variance <= CONSTANT_RELATIVE_SPREAD**2 * np.maximum(magnitude, 1e-300)
    for index in np.flatnonzero(constant):
        aliased[names[index]] = "constant in the training rows: aliased with the intercept"
    varying = np.flatnonzero(~constant)
    spread = np.sqrt(variance[varying])
    gram = centered_gram[np.ix_(varying, varying)] / np.outer(spread, spread)  # n × correlations
    kept: list[int] = []
    for position, index in enumerate(varying):
        if kept:
            block = gram[np.ix_(kept, kept)]
            cross = gram[kept, position]
            weights = np.linalg.solve(block, cross)
            unexplained = (gram[position, position] - cross @ weights) / gram[position, position]
        else:
            unexplained, weights = 1.0, np.empty(0)
        if unexplained < tolerance:
            combined = [names[varying[k]] for k, w in zip(kept, weights, strict=True)]
            shares = [n for n, w in zip(combined, weights, strict=True) if abs(w) > _NAMED_SHARE]
            listed = ", ".join(shares[:8]) + (
                f" and {len(shares) - 8} more" if len(shares) > 8 else ""
            )
            aliased[names[index]] = (
                f"a linear combination of {listed or 'nothing'} and the intercept "
                f"(share of its variance left unexplained {max(unexplained, 0.0):.1e})"
            )
        else:
            kept.append(position)
    return {name: aliased[name] for name in names if name in aliased}


# R² of the target on one design column alone above this: the column is the target or made from
# it (a copy, price × 1.0001 + noise, its log with a log target). No real feature of a house
# explains its price to 0.1%; a leak would make the fit a tautology that new houses can't use,
# and its near-perfect fit leaves the optimiser nothing to converge on but round-off.
LEAK_R2 = 0.999


class TargetLeakError(SourceError):
    """A feature that (nearly) equals the target: a leak in the data, refused by name."""


def target_leaks(
    column_squares: np.ndarray,
    cross: np.ndarray,
    target_squares: float,
    names: list[str],
    limit: float = LEAK_R2,
) -> dict[str, float]:
    """{column: R²} for the design columns that alone explain more than `limit` of the target.

    Centred sums over the training rows: column_squares Σ (x − x̄)², cross Σ (x − x̄)(y − ȳ),
    target_squares Σ (y − ȳ)², so the in-memory and the streamed stage decide alike.
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        r2 = cross**2 / (column_squares * target_squares)
    return {names[i]: float(r2[i]) for i in np.flatnonzero(np.nan_to_num(r2) > limit)}


def refuse_target_leaks(leaks: dict[str, float], target: str, log_target: bool, rows: int) -> None:
    """Raise TargetLeakError naming each leaking column and its R² with the (log) target."""
    if leaks:
        listed = ", ".join(f"{name!r} (R² {r2:.6f})" for name, r2 in leaks.items())
        fitted = f"{target!r} (fitted as its log)" if log_target else repr(target)
        raise TargetLeakError(
            f"features {listed} explain the target {fitted} almost entirely on the {rows} "
            f"training rows (R² above {LEAK_R2}): they are the target or made from it, a leak "
            "that new houses won't have; remove them from the features"
        )


def least_squares_residuals(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Residuals of the exact least-squares fit of target on an intercept plus design."""
    centred = design - design.mean(axis=0)
    aim = target - target.mean()
    coef = np.linalg.lstsq(centred, aim, rcond=None)[0] if design.shape[1] else np.empty(0)
    return aim - centred @ coef


def smearing_factor(residuals: np.ndarray) -> float:
    """Duan's smearing factor, mean(exp(residual)) for log-scale residuals (Duan 1983).

    exp(predicted log) estimates the median; times this factor, the mean, whatever the shape
    of the errors (exp(σ²/2) would assume them normal).
    """
    return float(np.mean(np.exp(residuals)))


class RegressionTable(NamedTuple):
    """An OLS fit as regression output: one row per term, and the fit's summary."""

    table: list[dict[str, Any]]  # term, coef, se, se_hc0, se_hc1, t, p, ci_low, ci_high
    fit: dict[str, Any]  # n, k (terms), df_resid, r2, adj_r2, rse, f, f_p

    def coefficients(self) -> dict[str, float]:
        """{term: coefficient}."""
        return {row["term"]: row["coef"] for row in self.table}


def regression_table(
    design: np.ndarray, target: np.ndarray, names: list[str], confidence: float = 0.95
) -> RegressionTable:
    """OLS of target on an intercept plus design (full column rank), as statsmodels reports it.

    Standard errors: classical (s² (X'X)⁻¹), HC0 (White's sandwich) and HC1 (HC0 × n/(n−k)).
    t, p and the interval use the classical ones and n − k degrees of freedom; F tests all
    slopes against zero. Computed by QR, so (X'X) is never formed or inverted.
    """
    x = np.hstack([np.ones((len(design), 1)), design])
    n, k = x.shape
    q, r = np.linalg.qr(x)
    coef = np.linalg.solve(r, q.T @ target)
    residuals = target - x @ coef
    rss = float(residuals @ residuals)
    tss = float(np.sum((target - target.mean()) ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = rss / (n - k) if n > k else float("nan")
        r_inv = np.linalg.solve(r, np.eye(k))
        bread = r_inv @ r_inv.T  # (X'X)⁻¹
        meat = (q * residuals[:, None]).T @ (q * residuals[:, None])  # Q' diag(e²) Q
        hc0 = np.sqrt(np.diag(r_inv @ meat @ r_inv.T))
        se = np.sqrt(np.diag(bread) * sigma2)
    return table_of_estimates(coef, se, hc0, n, rss, tss, ["intercept", *names], confidence)


def table_of_estimates(
    coef: np.ndarray,
    se: np.ndarray,
    hc0: np.ndarray,
    n: int,
    rss: float,
    tss: float,
    terms: list[str],
    confidence: float = 0.95,
) -> RegressionTable:
    """The table and fit summary of an OLS fit with an intercept, from its estimates and sums.

    se: classical standard errors, hc0: White's; rss, tss: residual and total sums of squares.
    Shared by regression_table and the streamed reference (streamed_reference.py).
    """
    k = len(coef)
    df = n - k
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = rss / df if df > 0 else float("nan")
        hc1 = hc0 * np.sqrt(n / df) if df > 0 else np.full(k, np.nan)
        t = coef / se
        p = 2 * stats.t.sf(np.abs(t), df) if df > 0 else np.full(k, np.nan)
        half_width = (stats.t.ppf(0.5 + confidence / 2, df) if df > 0 else np.nan) * se
        r2 = 1 - rss / tss if tss > 0 else float("nan")
        slopes = k - 1
        f = ((tss - rss) / slopes) / sigma2 if slopes > 0 and df > 0 else float("nan")
        f_p = float(stats.f.sf(f, slopes, df)) if np.isfinite(f) else float("nan")
    table = [
        {
            "term": term,
            "coef": float(coef[i]),
            "se": float(se[i]),
            "se_hc0": float(hc0[i]),
            "se_hc1": float(hc1[i]),
            "t": float(t[i]),
            "p": float(p[i]),
            "ci_low": float(coef[i] - half_width[i]),
            "ci_high": float(coef[i] + half_width[i]),
        }
        for i, term in enumerate(terms)
    ]
    fit = {
        "n": n,
        "k": k,
        "df_resid": df,
        "r2": float(r2),
        "adj_r2": float(1 - (1 - r2) * (n - 1) / df) if df > 0 else float("nan"),
        "rse": float(np.sqrt(sigma2)),
        "f": float(f),
        "f_df": [slopes, df],
        "f_p": f_p,
        "confidence": confidence,
    }
    return RegressionTable(table, fit)
