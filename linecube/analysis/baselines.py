"""Simple baselines on the same store: PCA reconstruction error and an isolation forest on
integrated line-ratio features. (The third baseline, the 2-D conv autoencoder, is a model file
like the ConvLSTM's: embed and score it into its own analysis directory and compare.)
"""

from __future__ import annotations

import numpy as np

from linecube.errors import ConfigError
from linecube.store.store import Store

RATIO_FLOOR = 1e-3  # ratios below (or undefined: zero flux) are set to this before the log


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(start + size, n)


def pca_scores(
    store: Store, n_components: int, batch_size: int = 256, error: str = "l1"
) -> np.ndarray:
    """Reconstruction error of each galaxy under a PCA of the flattened maps.

    The PCA (incremental, so memory stays flat) is fitted on every galaxy of the store with
    masked spaxels at zero, as the networks see them; the error is averaged over valid
    spaxels like ``score_recon``.

    Args:
        store: the store.
        n_components: principal components kept (the model's latent dimension is a fair match).
        batch_size: galaxies per partial fit (raised to ``n_components`` if smaller).
        error: ``l1`` or ``mse``, as in embed.

    Returns:
        (N,) scores, higher = worse reconstructed.
    """
    from sklearn.decomposition import IncrementalPCA

    n = len(store)
    n_components = min(n_components, n)
    if n_components < 1:
        raise ConfigError("the PCA baseline needs at least one galaxy")
    batch_size = max(batch_size, n_components)
    pca = IncrementalPCA(n_components=n_components)
    bounds = list(_batches(n, batch_size))
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < n_components:
        bounds[-2:] = [(bounds[-2][0], bounds[-1][1])]  # a last batch too small to fit alone
    for start, stop in bounds:
        pca.partial_fit(store.read(slice(start, stop))["x"].reshape(stop - start, -1))
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
    """log10 of every line's integrated flux over the reference line's, (N, L - 1).

    Ratios that are not positive and finite (no flux) are set to ``RATIO_FLOOR``.
    """
    if reference not in lines:
        raise ConfigError(f"the line-ratio baseline needs {reference} among the lines")
    ref = lines.index(reference)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.delete(fluxes, ref, axis=1) / fluxes[:, ref : ref + 1]
    ratio = np.where(np.isfinite(ratio) & (ratio > RATIO_FLOOR), ratio, RATIO_FLOOR)
    return np.log10(ratio)


def ratio_iforest_scores(store: Store, seed: int = 0, n_estimators: int = 200) -> np.ndarray:
    """Isolation-forest anomaly score on integrated line-ratio features (higher = anomalous)."""
    from sklearn.ensemble import IsolationForest

    from linecube.analysis.scores import robust_standardise

    features = robust_standardise(ratio_features(integrated_fluxes(store), list(store.meta.lines)))
    forest = IsolationForest(n_estimators=n_estimators, random_state=seed).fit(features)
    return -forest.score_samples(features)
