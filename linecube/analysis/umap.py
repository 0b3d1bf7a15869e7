"""UMAP of the latent space, seeded, with every parameter exposed."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from linecube.analysis.layout import AnalysisDir
from linecube.config import StrictModel


class UmapConfig(StrictModel):
    """Settings of ``linecube umap`` (names and meanings as in ``umap.UMAP``)."""

    n_components: Literal[2, 3] = Field(
        2, description="2 (umap_x, umap_y) or 3 (adds umap_z)")
    n_neighbors: int = Field(15, ge=2, description="size of the local neighbourhood")
    min_dist: float = Field(0.1, ge=0, description="minimum distance between embedded points")
    spread: float = Field(1.0, gt=0, description="scale of the embedded points")
    metric: str = Field(
        "euclidean", description="distance in latent space (any metric umap.UMAP accepts)")
    n_epochs: int | None = Field(
        None, description="optimisation epochs (default: UMAP's default for the data size)")
    learning_rate: float = Field(1.0, description="as in umap.UMAP")
    init: str = Field("spectral", description="spectral, random or pca (as in umap.UMAP)")
    set_op_mix_ratio: float = Field(1.0, ge=0, le=1, description="as in umap.UMAP")
    local_connectivity: float = Field(1.0, description="as in umap.UMAP")
    repulsion_strength: float = Field(1.0, description="as in umap.UMAP")
    negative_sample_rate: int = Field(5, description="as in umap.UMAP")
    standardise: bool = Field(
        True, description="robust-standardise each latent dimension first")
    seed: int | None = Field(
        0, description="random_state; with a seed UMAP runs single-threaded and is "
        "reproducible, without (None, from Python) in parallel and not reproducibly")
    extra: dict[str, Any] = Field(
        default_factory=dict, description="any other umap.UMAP keyword, passed through")


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
