"""Anomaly scores from the latent space, robust standardisation, percentiles and ranks.

Semantics follow PyOD: every ``score_*`` is a raw score where higher means more anomalous;
``pct_*`` is its percentile in the survey (0-100, higher = more anomalous); ``score_combined``
is the mean robust z-score of the chosen scores and ``rank`` orders it (1 = most anomalous).
A galaxy is flagged (``flag_anomaly``) only through a stated percentile threshold.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pandas as pd
from pydantic import Field

from linecube.analysis.layout import AnalysisDir
from linecube.config import StrictModel
from linecube.errors import ConfigError

LATENT_DETECTORS = ("iforest", "knn", "lof")
# The scores of the headline ranking: the calibrated shape residual's contrast (compact
# anomalies: a nucleus unlike its disk) and mean (anomalies that fill their galaxy), the
# combination that benchmarks/science_check.py found best across the simulated classes and
# with the least dependence on noise and IFU size (BENCHMARKS.md, "Science check").
HEADLINE_SCORES = ("resid_contrast", "resid_mean")
PYOD_DETECTORS = ("ecod", "copod")


class ScoreConfig(StrictModel):
    """Settings of ``linecube score``."""

    detectors: list[str] | None = Field(
        None, description="latent-space detectors among iforest, knn, lof, ecod, copod (the "
        "last two need the optional pyod extra; default: the first three, plus the PyOD ones "
        "when PyOD is installed)")
    k: int = Field(
        10, gt=0, description="neighbours of knn (mean distance to the k nearest) and lof")
    n_estimators: int = Field(200, gt=0, description="trees of the isolation forest")
    combine: list[str] = Field(
        default_factory=lambda: list(HEADLINE_SCORES),
        description="scores averaged (as robust z-scores) into score_combined; names without "
        "the score_ prefix, e.g. recon (the uncalibrated reconstruction error), resid_peak, "
        "resid_mean or resid_contrast (the calibrated residual statistics)")
    threshold_pct: float = Field(
        99.0, ge=0, le=100,
        description="galaxies with pct_combined >= this are flagged flag_anomaly")
    seed: int = Field(0, description="seed of the isolation forest")


def pyod_available() -> bool:
    """Whether the optional PyOD detectors can be used."""
    return importlib.util.find_spec("pyod") is not None


def resolve_detectors(cfg: ScoreConfig) -> tuple[list[str], list[str]]:
    """The detectors to run and notes for the user (e.g. PyOD detectors skipped)."""
    if cfg.detectors is not None:
        return list(cfg.detectors), []
    if pyod_available():
        return [*LATENT_DETECTORS, *PYOD_DETECTORS], []
    return list(LATENT_DETECTORS), [
        "PyOD is not installed: the ECOD and COPOD detectors were skipped "
        "(pip install 'linecube[pyod]' to add them)"
    ]


def robust_standardise(mu: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Per-column robust standardisation: (mu - median) / (1.4826 MAD), MAD 0 -> 1.

    Args:
        mu: (N, D) latents (or any features).
        reference: (M, D) rows whose median and MAD are used (default: ``mu``).

    Returns:
        (N, D) float64.
    """
    mu = np.asarray(mu, dtype=np.float64)
    ref = mu if reference is None else np.asarray(reference, dtype=np.float64)
    med = np.median(ref, axis=0)
    mad = 1.4826 * np.median(np.abs(ref - med), axis=0)
    return (mu - med) / np.where(mad > 0, mad, 1.0)


def latent_scores(
    mu: np.ndarray,
    cfg: ScoreConfig,
    detectors: list[str] | None = None,
    fit_rows: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Raw anomaly scores of each latent vector (higher = more anomalous).

    The detectors are fitted on ``fit_rows`` (the galaxies the network trained on) and score
    every galaxy, so galaxies outside ``fit_rows`` are scored out of sample. Detectors see the
    latents after :func:`robust_standardise` with the median and MAD of ``fit_rows``.

    Args:
        mu: (N, D) latents.
        cfg: detector settings.
        detectors: names to run (default: :func:`resolve_detectors`).
        fit_rows: rows the detectors are fitted on (default: all).

    Returns:
        ``{"score_<detector>": (N,)}``.
    """
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors

    n = len(mu)
    fit = np.arange(n) if fit_rows is None else np.asarray(fit_rows, dtype=np.int64)
    z = robust_standardise(mu, np.asarray(mu)[fit])
    zf = z[fit]
    in_fit = np.zeros(n, dtype=bool)
    in_fit[fit] = True
    detectors = detectors if detectors is not None else resolve_detectors(cfg)[0]
    unknown = set(detectors) - set(LATENT_DETECTORS) - set(PYOD_DETECTORS)
    if unknown:
        raise ConfigError(
            f"unknown detector(s) {sorted(unknown)}; choose from "
            f"{', '.join(LATENT_DETECTORS + PYOD_DETECTORS)}"
        )
    k = min(cfg.k, len(fit) - 1)
    if k < 1:
        raise ConfigError(f"latent-space scores need at least 2 galaxies, got {len(fit)}")
    out: dict[str, np.ndarray] = {}
    for name in detectors:
        if name == "iforest":
            forest = IsolationForest(n_estimators=cfg.n_estimators, random_state=cfg.seed).fit(zf)
            out["score_iforest"] = -forest.score_samples(z)
        elif name == "knn":
            # a fitted galaxy is its own nearest neighbour: drop it, keep k others
            dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(zf).kneighbors(z)
            out["score_knn"] = np.where(
                in_fit, dist[:, 1:].mean(axis=1), dist[:, :k].mean(axis=1)
            )
        elif name == "lof":
            lof = LocalOutlierFactor(n_neighbors=k).fit(zf)
            value = np.empty(n)
            value[fit] = -lof.negative_outlier_factor_
            if (~in_fit).any():
                novelty = LocalOutlierFactor(n_neighbors=k, novelty=True).fit(zf)
                value[~in_fit] = -novelty.score_samples(z[~in_fit])
            out["score_lof"] = value
        else:
            if not pyod_available():
                raise ConfigError(
                    f"detector {name!r} needs the optional PyOD package "
                    "(pip install 'linecube[pyod]')"
                )
            from pyod.models.copod import COPOD
            from pyod.models.ecod import ECOD

            detector = {"ecod": ECOD, "copod": COPOD}[name]().fit(zf)
            out[f"score_{name}"] = np.asarray(detector.decision_function(z), dtype=np.float64)
    return out


def robust_z(score: np.ndarray) -> np.ndarray:
    """(score - median) / (1.4826 MAD); NaN stays NaN; a constant score gives zeros."""
    score = np.asarray(score, dtype=np.float64)
    med = np.nanmedian(score)
    mad = 1.4826 * np.nanmedian(np.abs(score - med))
    return (score - med) / (mad if mad > 0 else 1.0)


def percentile(score: np.ndarray) -> np.ndarray:
    """Percentile of each score in the sample, 0-100 (ties share their mean rank; NaN stays NaN).

    The highest score gets 100 and the lowest 0 (for N > 1).
    """
    series = pd.Series(np.asarray(score, dtype=np.float64))
    ranks = series.rank(method="average")
    valid = int(series.notna().sum())
    if valid <= 1:
        return np.where(series.notna(), 100.0, np.nan)
    return ((ranks - 1) / (valid - 1) * 100).to_numpy()


def combine_scores(catalogue: pd.DataFrame, cfg: ScoreConfig) -> dict[str, np.ndarray]:
    """Percentiles of every score, the combined score, its rank and the threshold flag.

    Args:
        catalogue: has ``score_<name>`` for every name in ``cfg.combine``.
        cfg: which scores to combine and the threshold.

    Returns:
        ``pct_<name>`` per score column, ``score_combined``, ``pct_combined``, ``rank`` and
        ``flag_anomaly``.
    """
    missing = [f"score_{name}" for name in cfg.combine if f"score_{name}" not in catalogue]
    if missing:
        raise ConfigError(f"cannot combine {missing}: not in the catalogue")
    out: dict[str, np.ndarray] = {}
    for name in catalogue.columns:
        if name.startswith("score_") and name != "score_combined":
            out["pct_" + name[len("score_") :]] = percentile(catalogue[name].to_numpy())
    z = np.column_stack([robust_z(catalogue[f"score_{name}"].to_numpy()) for name in cfg.combine])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
        combined = np.nanmean(z, axis=1)
    out["score_combined"] = combined
    out["pct_combined"] = percentile(combined)
    order = pd.Series(combined).rank(method="first", ascending=False, na_option="bottom")
    out["rank"] = order.to_numpy().astype(np.int64)
    out["flag_anomaly"] = out["pct_combined"] >= cfg.threshold_pct
    return out


def score(out, cfg: ScoreConfig | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Compute every latent-space score and the combination; write them into the catalogue.

    Args:
        out: the analysis directory (``linecube embed`` must have run).
        cfg: detectors, combination and threshold.

    Returns:
        The updated catalogue and notes for the user (detectors skipped and why).
    """
    cfg = cfg or ScoreConfig()
    detectors, notes = resolve_detectors(cfg)
    adir = AnalysisDir(out)
    cat = adir.require_columns(["score_recon"])
    mu, _ = adir.latents()
    fit_rows = np.flatnonzero(cat["split"] == "train") if "split" in cat else None
    if fit_rows is not None and len(fit_rows) < 2:
        fit_rows = None  # the model trained on another store: learn this survey's population
    columns = latent_scores(mu, cfg, detectors, fit_rows)
    for name, value in columns.items():
        cat[name] = value
    columns.update(combine_scores(cat, cfg))
    cat = adir.write_columns(columns)
    adir.update_info(
        "score",
        {**cfg.model_dump(), "detectors": detectors, "notes": notes},
        threshold=(
            f"flag_anomaly = pct_combined >= {cfg.threshold_pct} (a fixed survey percentile set "
            "by threshold_pct, not fitted to labels)"
        ),
    )
    return cat, notes
