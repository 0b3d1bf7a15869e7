"""Simple baselines on the same store: PCA reconstruction error and an isolation forest on
integrated line-ratio features. (The third baseline, the 2-D conv autoencoder, is a model file
like the ConvLSTM's: embed and score it into its own analysis directory and compare.)
"""

from __future__ import annotations

import numpy as np

from linecube.errors import ConfigError
from linecube.lines import TIED_LINES
from linecube.store.store import Store

RATIO_FLOOR = 1e-3  # ratios below (or undefined: zero flux) are set to this before the log


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _fit_rows(store: Store, fit_rows: np.ndarray | None) -> np.ndarray:
    return np.arange(len(store)) if fit_rows is None else np.sort(np.asarray(fit_rows, np.int64))


def pca_scores(
    store: Store,
    n_components: int,
    batch_size: int = 256,
    error: str = "l1",
    fit_rows: np.ndarray | None = None,
) -> np.ndarray:
    """Reconstruction error of each galaxy under a PCA of the flattened maps.

    The PCA (incremental, so memory stays flat) is fitted on ``fit_rows`` with masked spaxels
    at zero, as the networks see them; the error is averaged over valid spaxels like
    ``score_recon``.

    Args:
        store: the store.
        n_components: principal components kept (the model's latent dimension is a fair match).
        batch_size: galaxies per partial fit (raised to ``n_components`` if smaller).
        error: ``l1`` or ``mse``, as in embed.
        fit_rows: galaxies the PCA is fitted on (default: all); the others are out of sample.

    Returns:
        (N,) scores, higher = worse reconstructed.
    """
    from sklearn.decomposition import IncrementalPCA

    n = len(store)
    fit = _fit_rows(store, fit_rows)
    n_components = min(n_components, len(fit))
    if n_components < 1:
        raise ConfigError("the PCA baseline needs at least one galaxy")
    batch_size = max(batch_size, n_components)
    pca = IncrementalPCA(n_components=n_components)
    chunks = [fit[i : i + batch_size] for i in range(0, len(fit), batch_size)]
    if len(chunks) > 1 and len(chunks[-1]) < n_components:
        chunks[-2:] = [np.concatenate(chunks[-2:])]  # a last batch too small to fit alone
    for rows in chunks:
        pca.partial_fit(store.read(rows)["x"].reshape(len(rows), -1))
    bounds = list(_batches(n, batch_size))
    scores = np.empty(n)
    for start, stop in bounds:
        data = store.read(slice(start, stop))
        x = data["x"].reshape(stop - start, -1)
        diff = pca.inverse_transform(pca.transform(x)) - x
        err = np.abs(diff) if error == "l1" else diff**2
        w = data["weight"].reshape(stop - start, -1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores[start:stop] = (err * w).sum(axis=1) / w.sum(axis=1)
    return scores


def integrated_fluxes(store: Store, batch_size: int = 64) -> np.ndarray:
    """(N, L) physical flux of every line summed over its valid spaxels."""
    from linecube.analysis.physical import physical_maps

    out = np.empty((len(store), len(store.meta.lines)))
    for start, stop in _batches(len(store), batch_size):
        phys = physical_maps(store, start, stop)
        out[start:stop] = np.where(phys["valid"], phys["flux"], 0.0).sum(axis=(2, 3))
    return out


def ratio_features(fluxes: np.ndarray, lines: list[str], reference: str = "Ha-6564") -> np.ndarray:
    """log10 of every free line's integrated flux over the reference line's, (N, F).

    Lines whose flux the DAP ties to a partner at a fixed ratio (e.g. [OIII] 4960) carry no
    information of their own and are dropped. Ratios that are not positive and finite (no
    flux) are set to ``RATIO_FLOOR``.
    """
    if reference not in lines:
        raise ConfigError(f"the line-ratio baseline needs {reference} among the lines")
    ref = lines.index(reference)
    free = [i for i, name in enumerate(lines) if i != ref and name not in TIED_LINES]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = fluxes[:, free] / fluxes[:, ref : ref + 1]
    ratio = np.where(np.isfinite(ratio) & (ratio > RATIO_FLOOR), ratio, RATIO_FLOOR)
    return np.log10(ratio)


def ratio_iforest_scores(
    store: Store, seed: int = 0, n_estimators: int = 200, fit_rows: np.ndarray | None = None
) -> np.ndarray:
    """Isolation-forest anomaly score on integrated line-ratio features (higher = anomalous).

    The forest (and the features' standardisation) is fitted on ``fit_rows`` (default: all).
    """
    from sklearn.ensemble import IsolationForest

    from linecube.analysis.scores import robust_standardise

    fit = _fit_rows(store, fit_rows)
    ratios = ratio_features(integrated_fluxes(store), list(store.meta.lines))
    features = robust_standardise(ratios, ratios[fit])
    forest = IsolationForest(n_estimators=n_estimators, random_state=seed).fit(features[fit])
    return -forest.score_samples(features)
