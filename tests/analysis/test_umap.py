import numpy as np
import pandas as pd
import pytest

from linecube.analysis.umap import UmapConfig, fit_umap, run_umap
from linecube.config import validate
from linecube.errors import ConfigError


@pytest.mark.slow
def test_umap_seeded_2d_and_3d(embedded):
    cfg = UmapConfig(n_neighbors=5, n_epochs=30, seed=3)
    cat = run_umap(embedded, cfg)
    first = cat[["umap_x", "umap_y"]].to_numpy()
    assert np.isfinite(first).all() and "umap_z" not in cat
    again = run_umap(embedded, cfg)
    np.testing.assert_array_equal(again[["umap_x", "umap_y"]].to_numpy(), first)
    cat = run_umap(embedded, cfg.model_copy(update={"n_components": 3}))
    assert "umap_z" in cat and "score_recon" in cat
    cat = run_umap(embedded, cfg)
    assert "umap_z" not in pd.read_parquet(embedded / "catalogue.parquet")


@pytest.mark.slow
def test_every_parameter_reaches_umap():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(30, 4))
    a = fit_umap(mu, UmapConfig(n_neighbors=5, n_epochs=20, min_dist=0.5, spread=2.0))
    b = fit_umap(mu, UmapConfig(n_neighbors=5, n_epochs=20, min_dist=0.0, spread=0.5))
    assert a.std() > b.std()  # a larger spread and min_dist spread the points further
    out = fit_umap(mu, UmapConfig(n_neighbors=5, n_epochs=20, extra={"densmap": False}))
    assert out.shape == (30, 2)


def test_unknown_setting_is_rejected():
    with pytest.raises(ConfigError, match="unknown key"):
        validate(UmapConfig, {"n_neighbours": 5})
