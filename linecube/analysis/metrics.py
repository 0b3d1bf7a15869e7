"""Ranking metrics for anomaly scores against binary labels, vectorised over bootstrap draws.

Scores follow PyOD semantics (higher = more anomalous); labels are 1 for the class of
interest. Every function takes (B, N) arrays (B bootstrap draws of N galaxies) and returns (B,).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import rankdata


def auroc(score: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Area under the ROC curve (Mann-Whitney U, mid-ranks for ties); NaN if a class is empty."""
    ranks = rankdata(score, axis=1)
    n_pos = label.sum(axis=1)
    n_neg = label.shape[1] - n_pos
    u = (ranks * label).sum(axis=1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def _sorted_labels(score: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Labels ordered by decreasing score (stable), (B, N)."""
    order = np.argsort(-score, axis=1, kind="stable")
    return np.take_along_axis(label, order, axis=1)


def average_precision(score: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Mean of the precision at the rank of each positive (step-wise AP, as scikit-learn's)."""
    ordered = _sorted_labels(score, label)
    hits = np.cumsum(ordered, axis=1)
    precision = hits / np.arange(1, label.shape[1] + 1)
    n_pos = label.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pos > 0, (precision * ordered).sum(axis=1) / n_pos, np.nan)


def precision_at_k(score: np.ndarray, label: np.ndarray, k: int) -> np.ndarray:
    """Fraction of labelled galaxies among the ``k`` highest scores."""
    k = min(k, label.shape[1])
    return _sorted_labels(score, label)[:, :k].mean(axis=1)


def recall_at_fraction(score: np.ndarray, label: np.ndarray, fraction: float) -> np.ndarray:
    """Fraction of the labelled galaxies that fall in the top ``fraction`` of the ranking."""
    top = max(1, int(np.ceil(fraction * label.shape[1])))
    n_pos = label.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            n_pos > 0, _sorted_labels(score, label)[:, :top].sum(axis=1) / n_pos, np.nan
        )


def positive_percentiles(
    score: np.ndarray, label: np.ndarray, qs: tuple[float, ...] = (16, 50, 84)
) -> dict[float, np.ndarray]:
    """Quantiles ``qs`` of the survey percentile (0-100) of the labelled galaxies."""
    n = label.shape[1]
    pct = (rankdata(score, axis=1) - 1) / max(n - 1, 1) * 100
    masked = np.where(label.astype(bool), pct, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw without positives gives NaN
        return {q: np.nanpercentile(masked, q, axis=1) for q in qs}


def all_metrics(
    score: np.ndarray, label: np.ndarray, k: int, fractions: tuple[float, ...]
) -> dict[str, np.ndarray]:
    """Every metric of the evaluation table, each (B,)."""
    out = {
        "auroc": auroc(score, label),
        "average_precision": average_precision(score, label),
        f"precision_at_{k}": precision_at_k(score, label, k),
    }
    for f in fractions:
        out[f"recall_top{f * 100:g}pct"] = recall_at_fraction(score, label, f)
    for q, value in positive_percentiles(score, label).items():
        out[f"pct_p{q:g}"] = value
    return out


def bootstrap(
    score: np.ndarray,
    label: np.ndarray,
    k: int,
    fractions: tuple[float, ...],
    n_boot: int,
    seed: int,
    level: float = 0.95,
) -> dict[str, tuple[float, float, float]]:
    """Each metric with a percentile bootstrap confidence interval.

    Args:
        score: (N,) scores (NaN rows must be removed beforehand).
        label: (N,) 0/1 labels.
        k, fractions: as in :func:`all_metrics`.
        n_boot: bootstrap draws of N galaxies with replacement (0: no interval).
        seed: seed of the draws.
        level: coverage of the interval.

    Returns:
        ``{metric: (value, low, high)}``.
    """
    score = np.asarray(score, dtype=np.float64)[None]
    label = np.asarray(label, dtype=np.float64)[None]
    point = all_metrics(score, label, k, fractions)
    if n_boot <= 0:
        return {name: (float(v[0]), np.nan, np.nan) for name, v in point.items()}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[np.ndarray]] = {name: [] for name in point}
    chunk = max(1, 2_000_000 // score.shape[1])
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, score.shape[1], size=(min(chunk, n_boot - start), score.shape[1]))
        for name, value in all_metrics(score[0][idx], label[0][idx], k, fractions).items():
            draws[name].append(value)
    alpha = (1 - level) / 2 * 100
    out = {}
    for name, value in point.items():
        sample = np.concatenate(draws[name])
        sample = sample[np.isfinite(sample)]
        lo, hi = np.percentile(sample, [alpha, 100 - alpha]) if sample.size else (np.nan, np.nan)
        out[name] = (float(value[0]), float(lo), float(hi))
    return out
