"""UMAP of the latent space, seeded, with every parameter exposed."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from linecube.analysis.layout import AnalysisDir
from linecube.config import StrictModel


class UmapConfig(StrictModel):
    """Settings of ``linecube umap`` (names and meanings as in ``umap.UMAP``).

    Attributes:
        n_components: 2 (``umap_x``, ``umap_y``) or 3 (adds ``umap_z``).
        n_neighbors: size of the local neighbourhood.
        min_dist: minimum distance between embedded points.
        spread: scale of the embedded points.
        metric: distance in latent space (any metric ``umap.UMAP`` accepts).
        n_epochs: optimisation epochs (``None``: UMAP's default for the data size).
        learning_rate, init, set_op_mix_ratio, local_connectivity, repulsion_strength,
            negative_sample_rate: as in ``umap.UMAP``.
        standardise: robust-standardise each latent dimension first.
        seed: ``random_state``; with a seed UMAP runs single-threaded and is reproducible;
            ``None`` runs in parallel, not reproducibly.
        extra: any other ``umap.UMAP`` keyword, passed through.
    """

    n_components: Literal[2, 3] = 2
    n_neighbors: int = Field(15, ge=2)
    min_dist: float = Field(0.1, ge=0)
    spread: float = Field(1.0, gt=0)
    metric: str = "euclidean"
    n_epochs: int | None = None
    learning_rate: float = 1.0
    init: str = "spectral"
    set_op_mix_ratio: float = Field(1.0, ge=0, le=1)
    local_connectivity: float = 1.0
    repulsion_strength: float = 1.0
    negative_sample_rate: int = 5
    standardise: bool = True
    seed: int | None = 0
    extra: dict[str, Any] = Field(default_factory=dict)


def fit_umap(mu: np.ndarray, cfg: UmapConfig | None = None) -> np.ndarray:
    """Embed latents with UMAP.

    Args:
        mu: (N, D) latents.
        cfg: UMAP settings.

    Returns:
        (N, n_components) float32 coordinates.
    """
    import umap

    from linecube.analysis.scores import robust_standardise

    cfg = cfg or UmapConfig()
    data = robust_standardise(mu) if cfg.standardise else np.asarray(mu, dtype=np.float64)
    params = cfg.model_dump(exclude={"standardise", "seed", "extra"})
    params["n_neighbors"] = min(cfg.n_neighbors, len(data) - 1)
    params["n_jobs"] = 1 if cfg.seed is not None else -1
    reducer = umap.UMAP(**params, random_state=cfg.seed, **cfg.extra)
    return reducer.fit_transform(data).astype(np.float32)


def run_umap(out, cfg: UmapConfig | None = None) -> pd.DataFrame:
    """Fit UMAP on the analysis directory's latents and save ``umap_x/y[/z]`` in the catalogue."""
    cfg = cfg or UmapConfig()
    adir = AnalysisDir(out)
    mu, _ = adir.latents()
    coords = fit_umap(mu, cfg)
    columns = {
        name: coords[:, i]
        for i, name in enumerate(("umap_x", "umap_y", "umap_z")[: cfg.n_components])
    }
    cat = adir.write_columns(columns, drop=["umap_z"] if cfg.n_components == 2 else [])
    adir.update_info("umap", cfg.model_dump())
    return cat
