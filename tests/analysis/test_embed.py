import json

import numpy as np
import pandas as pd
import pytest
import torch
import zarr
from analysis_fixtures import LINES, TinyModel
from astropy.table import Table

from linecube.analysis.embed import PARTIAL, EmbedConfig, embed, embed_columns, spaxel_error
from linecube.errors import CompatibilityError, ConfigError
from linecube.models import ModelOutput
from linecube.store import StoreMeta


def test_products_and_scores(store, embedded):
    n = len(store)
    lat = zarr.open_group(embedded / "latents.zarr", mode="r")
    assert lat["mu"].shape == (n, 3) and "logvar" not in lat
    err = zarr.open_group(embedded / "spaxel_error.zarr", mode="r")["error"]
    assert err.shape == (n, 7, 8, 8) and err.chunks == store.x.chunks
    recon = zarr.open_group(embedded / "recon.zarr", mode="r")["recon"][:]
    # the products agree with a direct forward pass
    data = store.read(slice(0, n))
    with torch.no_grad():
        out = TinyModel()(torch.from_numpy(data["x"]).unsqueeze(2))
    np.testing.assert_allclose(lat["mu"][:], out.mu.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(recon, out.recon.squeeze(2).numpy(), rtol=1e-5, atol=1e-6)
    expected = np.abs(out.recon.squeeze(2).numpy() - data["x"])
    w = data["weight"].astype(bool)
    e = err[:]
    assert np.isnan(e[~w]).all()
    np.testing.assert_allclose(e[w], expected[w], rtol=1e-5, atol=1e-6)
    cat = pd.read_parquet(embedded / "catalogue.parquet")
    assert list(cat["plateifu"]) == list(store.catalogue["plateifu"])
    assert list(cat["row"]) == list(range(n))
    np.testing.assert_allclose(
        cat["score_recon"], [expected[i][w[i]].mean() for i in range(n)], rtol=1e-5
    )
    np.testing.assert_allclose(
        cat["score_recon_Ha-6564"], [expected[i, 3][w[i, 3]].mean() for i in range(n)], rtol=1e-5
    )
    fits = Table.read(embedded / "catalogue.fits")
    assert len(fits) == n and f"score_recon_{LINES[0]}" in fits.colnames
    info = json.loads((embedded / "analysis.json").read_text())
    assert info["latent_dim"] == 3 and info["lines"] == LINES and "embed" in info["steps"]
    assert not (embedded / PARTIAL).exists()


def test_vae_and_spatial_latents_are_flattened(store, tmp_path, calibration):
    class Spatial(TinyModel):
        def forward(self, x):
            out = super().forward(x)
            mu = out.mu[:, :, None, None].expand(-1, -1, 2, 2)
            return ModelOutput(out.recon, mu, mu * 0 - 1)

    embed(Spatial(vae=True), store, tmp_path / "a", progress=False, calibration=calibration)
    lat = zarr.open_group(tmp_path / "a" / "latents.zarr", mode="r")
    assert lat["mu"].shape == (len(store), 12) and lat["logvar"].shape == (len(store), 12)
    assert not (tmp_path / "a" / "recon.zarr").exists()


def test_resume_after_interruption(store, tmp_path, calibration):
    class Failing(TinyModel):
        calls = 0

        def forward(self, x):
            Failing.calls += 1
            if Failing.calls == 3:
                raise KeyboardInterrupt
            return super().forward(x)

    cfg = EmbedConfig(batch_size=5)
    with pytest.raises(KeyboardInterrupt):
        embed(Failing(), store, tmp_path / "a", cfg, progress=False, calibration=calibration)
    progress = json.loads((tmp_path / "a" / PARTIAL / "progress.json").read_text())
    assert progress["done"] == 10

    class Counting(TinyModel):
        seen = 0

        def forward(self, x):
            Counting.seen += len(x)
            return super().forward(x)

    resumed = embed(Counting(), store, tmp_path / "a", cfg, progress=False, calibration=calibration)
    assert Counting.seen == len(store) - 10  # only the missing galaxies were embedded
    fresh = embed(TinyModel(), store, tmp_path / "b", cfg, progress=False, calibration=calibration)
    np.testing.assert_allclose(resumed["score_recon"], fresh["score_recon"], rtol=1e-6)
    np.testing.assert_array_equal(
        zarr.open_group(tmp_path / "a" / "latents.zarr")["mu"][:],
        zarr.open_group(tmp_path / "b" / "latents.zarr")["mu"][:],
    )


def test_model_and_store_that_disagree(store, tmp_path, calibration):
    other = StoreMeta(lines=LINES[:-1], size=8, preprocess=store.meta.preprocess)
    with pytest.raises(CompatibilityError, match="lines differ"):
        embed(TinyModel(), store, tmp_path / "a", model_store_meta=other, progress=False, calibration=calibration)
    other = StoreMeta(lines=LINES, size=8, preprocess={**store.meta.preprocess, "stretch": "log"})
    with pytest.raises(CompatibilityError, match="'stretch' differs"):
        embed(TinyModel(), store, tmp_path / "a", model_store_meta=other, progress=False, calibration=calibration)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_matches_cpu(store, tmp_path, calibration):
    cpu = embed(TinyModel(), store, tmp_path / "cpu", EmbedConfig(device="cpu"), progress=False, calibration=calibration)
    gpu = embed(TinyModel(), store, tmp_path / "gpu", EmbedConfig(device="cuda"), progress=False, calibration=calibration)
    np.testing.assert_allclose(gpu["score_recon"], cpu["score_recon"], rtol=1e-4)


def test_a_new_embedding_drops_stale_scores(store, embedded, calibration):
    from linecube.analysis.scores import ScoreConfig, score

    score(embedded, ScoreConfig(k=5))
    cat = embed(TinyModel(dim=2), store, embedded, progress=False, calibration=calibration)
    assert "score_recon" in cat and "score_knn" not in cat and "rank" not in cat
    assert "score" not in json.loads((embedded / "analysis.json").read_text())["steps"]


def test_resume_after_interrupted_finalisation(store, tmp_path, monkeypatch, calibration):
    from linecube.analysis import layout

    original = layout.AnalysisDir.write_columns

    def crash(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(layout.AnalysisDir, "write_columns", crash)
    with pytest.raises(KeyboardInterrupt):  # killed after the products were moved into place
        embed(TinyModel(), store, tmp_path / "a", progress=False, calibration=calibration)
    monkeypatch.setattr(layout.AnalysisDir, "write_columns", original)
    cat = embed(TinyModel(), store, tmp_path / "a", progress=False, calibration=calibration)
    assert cat["score_recon"].notna().all()
    assert zarr.open_group(tmp_path / "a" / "latents.zarr", mode="r")["mu"].shape == (len(store), 3)


def test_spaxel_error_metrics():
    x = np.array([[[[1.0, 2.0]]]])
    recon = np.array([[[[3.0, 1.5]]]])
    l1 = spaxel_error(recon, x, "l1")
    assert l1.dtype == np.float32 and l1.shape == x.shape
    np.testing.assert_allclose(l1.ravel(), [2.0, 0.5])
    np.testing.assert_allclose(spaxel_error(recon, x, "mse").ravel(), [4.0, 0.25])


def test_embed_columns_weighted_means_and_calibrated_stats():
    split = np.array(["train", "val"], dtype=object)
    line_sum = np.array([[2.0, 6.0], [0.0, 0.0]])
    line_weight = np.array([[1.0, 3.0], [0.0, 0.0]])  # galaxy 1 has no valid spaxel
    stats = np.array([[5.0, 1.0, 2.0, 0.5, -0.5], [np.nan] * 5])  # peak, mean, contrast, a, b
    cols = embed_columns(split, line_sum, line_weight, stats, ["a", "b"])
    assert list(cols) == [
        "split", "score_resid_peak", "score_resid_mean", "score_resid_contrast", "score_recon",
        "score_line_a", "score_line_b", "score_recon_a", "score_recon_b",
    ]
    np.testing.assert_allclose(cols["score_resid_contrast"], [2.0, np.nan])
    np.testing.assert_allclose(cols["score_recon"], [2.0, np.nan])  # (2 + 6) / (1 + 3)
    np.testing.assert_allclose(cols["score_recon_b"], [2.0, np.nan])
    np.testing.assert_allclose(cols["score_resid_peak"], [5.0, np.nan])
    np.testing.assert_allclose(cols["score_line_b"], [-0.5, np.nan])


def test_embed_fits_the_residual_it_is_asked_for_and_rejects_another(store, tmp_path, calibration):
    assert calibration.residual == "shape"  # fit_calibration's default
    assert [np.shape(t) for t in calibration.shape_var] == [np.shape(t) for t in calibration.model_var]
    flux_cfg = EmbedConfig(residual="flux")
    with pytest.raises(ConfigError, match="scores the shape residual, but residual = 'flux'"):
        embed(TinyModel(), store, tmp_path / "a", flux_cfg, progress=False, calibration=calibration)
    flux = calibration.model_copy(update={"residual": "flux", "shape_var": []})
    cat = embed(TinyModel(), store, tmp_path / "a", flux_cfg, progress=False, calibration=flux)
    shaped = embed(TinyModel(), store, tmp_path / "b", progress=False, calibration=calibration)
    # the same model and galaxies, two residuals: different scores
    assert not np.allclose(cat["score_resid_mean"], shaped["score_resid_mean"])
    info = json.loads((tmp_path / "b" / "analysis.json").read_text())
    assert info["calibration"].startswith("calibration.json: shape residual")
    assert info["steps"]["embed"]["settings"]["residual"] == "shape"


def test_a_flux_calibration_shares_the_first_pass_and_has_no_shape_tables(store, calibration):
    from linecube.analysis.calibrate import fit_calibration

    rows = np.arange(len(store) // 2, len(store))  # as the calibration fixture
    flux = fit_calibration(TinyModel().eval(), store, rows, torch.device("cpu"), residual="flux")
    assert flux.residual == "flux" and flux.shape_var == []
    assert flux.model_var == calibration.model_var and flux.level_edges == calibration.level_edges
    assert set(flux.reference) == set(calibration.reference)
    assert flux.reference["mean"] != calibration.reference["mean"]  # another residual, scored
