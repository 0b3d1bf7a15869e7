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


def _tie_groups(score: np.ndarray, label: np.ndarray):
    """Labels ordered by decreasing score, with the tie structure of that order.

    Returns:
        ``(hits, group_end, group_start)``, each (B, N): ``hits[:, i]`` positives among the
        first i + 1 galaxies; ``group_end[:, i]`` / ``group_start[:, i]`` the position of the
        last / first galaxy tied with galaxy i (in sorted order).
    """
    order = np.argsort(-score, axis=1, kind="stable")
    ordered = np.take_along_axis(score, order, axis=1)
    hits = np.cumsum(np.take_along_axis(label, order, axis=1), axis=1)
    n = score.shape[1]
    idx = np.broadcast_to(np.arange(n), score.shape)
    is_end = np.ones(score.shape, dtype=bool)
    is_end[:, :-1] = ordered[:, 1:] != ordered[:, :-1]
    is_start = np.ones(score.shape, dtype=bool)
    is_start[:, 1:] = is_end[:, :-1]
    group_start = np.maximum.accumulate(np.where(is_start, idx, 0), axis=1)
    group_end = np.minimum.accumulate(np.where(is_end, idx, n - 1)[:, ::-1], axis=1)[:, ::-1]
    return hits, group_end, group_start


def _hits_in_top(score: np.ndarray, label: np.ndarray, top: int) -> np.ndarray:
    """Expected positives among the ``top`` highest scores, a tie across the cut shared pro rata.

    This is the value of any metric that counts the top of a ranking when tied galaxies are
    ordered at random (scikit-learn's tie semantics for thresholded metrics).
    """
    hits, group_end, group_start = _tie_groups(score, label)
    rows = np.arange(score.shape[0])
    i = top - 1
    start, end = group_start[:, i], group_end[:, i]
    before = np.where(start > 0, hits[rows, np.maximum(start - 1, 0)], 0)
    in_group = hits[rows, end] - before
    return before + in_group * (top - start) / (end - start + 1)


def average_precision(score: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Step-wise AP over distinct score thresholds, as scikit-learn's ``average_precision_score``.

    Tied galaxies enter together: each threshold adds its recall gain times its precision, so
    scores [1, 1, 1, 1, 0] with labels [1, 0, 0, 0, 0] give 0.25.
    """
    hits, group_end, _ = _tie_groups(score, label)
    n = score.shape[1]
    is_end = group_end == np.arange(n)
    end_hits = np.where(is_end, hits, 0)
    prev_hits = np.zeros_like(end_hits)
    prev_hits[:, 1:] = np.maximum.accumulate(end_hits, axis=1)[:, :-1]
    precision = hits / np.arange(1, n + 1)
    n_pos = label.sum(axis=1)
    gain = np.where(is_end, hits - prev_hits, 0) * precision
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pos > 0, gain.sum(axis=1) / n_pos, np.nan)


def precision_at_k(score: np.ndarray, label: np.ndarray, k: int) -> np.ndarray:
    """Fraction of labelled galaxies among the ``k`` highest scores (ties shared pro rata)."""
    k = min(k, label.shape[1])
    return _hits_in_top(score, label, k) / k


def recall_at_fraction(score: np.ndarray, label: np.ndarray, fraction: float) -> np.ndarray:
    """Fraction of the labelled galaxies in the top ``fraction`` of the ranking (ties pro rata)."""
    top = max(1, int(np.ceil(fraction * label.shape[1])))
    n_pos = label.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pos > 0, _hits_in_top(score, label, top) / n_pos, np.nan)


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


def paired_auroc_differences(
    scores: np.ndarray,
    label: np.ndarray,
    n_boot: int,
    seed: int,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUROC(a) - AUROC(b) for every pair of score columns, with paired bootstrap intervals.

    Every draw resamples galaxies once and evaluates all columns on that same resample, so the
    interval of a difference reflects how the two scores rank the *same* galaxies.

    Args:
        scores: (N, C) scores, finite (rows with NaN must be removed beforehand).
        label: (N,) 0/1 labels.
        n_boot: bootstrap draws (0: no interval).
        seed: seed of the draws.
        level: coverage of the interval.

    Returns:
        ``(diff, low, high)``, each (C, C): entry [a, b] is AUROC(a) - AUROC(b).
    """
    scores = np.asarray(scores, dtype=np.float64)
    label = np.asarray(label, dtype=np.float64)
    point = np.array([auroc(scores[None, :, c], label[None])[0] for c in range(scores.shape[1])])
    diff = point[:, None] - point[None, :]
    if n_boot <= 0:
        nan = np.full_like(diff, np.nan)
        return diff, nan, nan.copy()
    rng = np.random.default_rng(seed)
    n = len(label)
    draws = []
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        y = label[idx]
        draws.append(np.stack([auroc(scores[:, c][idx], y) for c in range(scores.shape[1])], 1))
    values = np.concatenate(draws)  # (B, C)
    values = values[np.isfinite(values).all(axis=1)]
    alpha = (1 - level) / 2 * 100
    d = values[:, :, None] - values[:, None, :]
    low, high = np.percentile(d, [alpha, 100 - alpha], axis=0)
    return diff, low, high


def verdict(name_a: str, name_b: str, low: float, high: float) -> str:
    """"A beats B" only when the interval of AUROC(A) - AUROC(B) excludes 0."""
    if low > 0:
        return f"{name_a} beats {name_b}"
    if high < 0:
        return f"{name_b} beats {name_a}"
    return "no difference shown"
