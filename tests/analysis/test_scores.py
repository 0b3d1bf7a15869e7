import numpy as np
import pandas as pd
import pytest
import zarr

from linecube.analysis import scores as scores_mod
from linecube.analysis.layout import AnalysisDir
from linecube.analysis.scores import (
    ScoreConfig,
    combine_scores,
    latent_scores,
    percentile,
    robust_z,
    score,
)
from linecube.errors import ConfigError, InputFileError


def test_percentile_and_robust_z():
    np.testing.assert_allclose(percentile(np.array([3.0, 1.0, 2.0, np.nan])), [100, 0, 50, np.nan])
    np.testing.assert_allclose(percentile(np.array([1.0, 1.0, 2.0])), [25, 25, 100])
    z = robust_z(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    # median 3, MAD 1 -> scale 1.4826
    np.testing.assert_allclose(z, (np.array([1, 2, 3, 4, 100]) - 3) / 1.4826)
    np.testing.assert_allclose(robust_z(np.ones(4)), 0)


def test_latent_detectors_find_the_outlier():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(60, 4))
    mu[17] += 8
    out = latent_scores(mu, ScoreConfig(k=5), ["iforest", "knn", "lof"])
    assert set(out) == {"score_iforest", "score_knn", "score_lof"}
    for value in out.values():
        assert value.shape == (60,) and np.argmax(value) == 17
    with pytest.raises(ConfigError, match="unknown detector"):
        latent_scores(mu, ScoreConfig(), ["nope"])


def test_pyod_skipped_with_a_note(monkeypatch):
    monkeypatch.setattr(scores_mod, "pyod_available", lambda: False)
    detectors, notes = scores_mod.resolve_detectors(ScoreConfig())
    assert detectors == ["iforest", "knn", "lof"] and "PyOD is not installed" in notes[0]
    with pytest.raises(ConfigError, match="needs the optional PyOD"):
        latent_scores(np.zeros((5, 2)), ScoreConfig(k=2), ["ecod"])
    monkeypatch.setattr(scores_mod, "pyod_available", lambda: True)
    assert scores_mod.resolve_detectors(ScoreConfig())[0][-2:] == ["ecod", "copod"]


def test_combine_rank_and_threshold():
    cat = pd.DataFrame({"score_recon": [1.0, 5.0, 2.0, 3.0], "score_knn": [0.1, 0.9, 0.3, 0.2]})
    out = combine_scores(cat, ScoreConfig(combine=["recon", "knn"], threshold_pct=90))
    assert list(out["rank"]) == [4, 1, 3, 2]
    assert list(out["flag_anomaly"]) == [False, True, False, False]
    np.testing.assert_allclose(out["pct_recon"], [0, 100, 100 / 3, 200 / 3])
    z = np.column_stack([robust_z(cat.score_recon), robust_z(cat.score_knn)]).mean(axis=1)
    np.testing.assert_allclose(out["score_combined"], z)
    with pytest.raises(ConfigError, match="score_lof"):
        combine_scores(cat, ScoreConfig(combine=["lof"]))


def test_score_writes_every_column_and_keeps_the_others(embedded):
    cat, _ = score(embedded, ScoreConfig(k=5))
    for col in (
        "score_recon",
        "score_recon_Ha-6564",
        "score_iforest",
        "score_knn",
        "score_lof",
        "pct_recon",
        "pct_knn",
        "score_combined",
        "rank",
        "flag_anomaly",
    ):
        assert col in cat
    assert sorted(cat["rank"]) == list(range(1, len(cat) + 1))
    assert cat["pct_combined"].between(0, 100).all()
    again = pd.read_parquet(embedded / "catalogue.parquet")
    pd.testing.assert_frame_equal(again, cat)
    assert "threshold" in AnalysisDir(embedded).info()


def test_scores_before_embeddings(tmp_path, store):
    AnalysisDir(tmp_path / "a").open_store(store.path)
    with pytest.raises(InputFileError, match="run `linecube embed` first"):
        score(tmp_path / "a")
    zarr.open_group(tmp_path / "b", mode="w")
    with pytest.raises(InputFileError, match="linecube embed"):
        AnalysisDir(tmp_path / "b").latents()


def test_pyod_detectors_when_installed():
    pytest.importorskip("pyod")
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(60, 4))
    mu[5] += 8
    out = latent_scores(mu, ScoreConfig(), ["ecod", "copod"])
    assert np.argmax(out["score_ecod"]) == 5 and np.argmax(out["score_copod"]) == 5


def test_detectors_fitted_on_training_rows_score_the_others_out_of_sample():
    from linecube.analysis.scores import ScoreConfig, latent_scores

    rng = np.random.default_rng(5)
    mu = rng.normal(size=(60, 3))
    mu[50] = 8.0  # an outlier outside the fitted rows
    fit = np.arange(40)
    out = latent_scores(mu, ScoreConfig(k=5), ["iforest", "knn", "lof"], fit)
    for name, value in out.items():
        assert np.argmax(value) == 50, name
    # a fitted galaxy is not its own neighbour; an unfitted one has no copy among the fitted
    alone = latent_scores(mu[:40], ScoreConfig(k=5), ["knn"])["score_knn"]
    np.testing.assert_allclose(out["score_knn"][:40], alone)
