import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from linecube.analysis.bpt import run_bpt
from linecube.analysis.evaluate import (
    EvaluateConfig,
    bpt_purity,
    evaluate,
    noise_dependence,
    unmatched_policy,
)
from linecube.analysis.labels import label_vector, match_labels, read_table
from linecube.analysis.scores import ScoreConfig, score
from linecube.errors import ConfigError, InputFileError

FAST = dict(n_bootstrap=50, top_k=3, purity_k=3)


@pytest.fixture
def scored(embedded, store):
    score(embedded, ScoreConfig(k=5))
    run_bpt(embedded, progress=False)
    return embedded


def _agn_vac(path, store, agn_rows):
    """A MaNGA AGN VAC style FITS table listing every galaxy with four flag columns."""
    cat = store.catalogue
    flags = np.zeros(len(cat), bool)
    flags[list(agn_rows)] = True
    Table(
        {
            "MANGAID": cat["mangaid"].to_numpy(dtype=str),
            "PLATEIFU": cat["plateifu"].to_numpy(dtype=str),
            "WISE_AGN": flags,
            "BAT_AGN": np.zeros(len(cat), bool),
            "RADIO_AGN": np.zeros(len(cat), bool),
            "BROAD_AGN": np.zeros(len(cat), bool),
        }
    ).write(path)
    return path


def test_agn_vac_layout(scored, store, tmp_path):
    labels = _agn_vac(tmp_path / "agn.fits", store, [0, 5])
    result = evaluate(scored, labels, EvaluateConfig(**FAST))
    m = result["metrics"].set_index("score")
    assert set(m.index) >= {
        "score_recon",
        "score_iforest",
        "score_knn",
        "score_lof",
        "score_combined",
    }
    assert (m["n_positive"] == 2).all() and (m["n"] == len(store)).all()
    assert m["label"].iloc[0] == "any of WISE_AGN, BAT_AGN, RADIO_AGN, BROAD_AGN"
    for col in (
        "auroc",
        "average_precision",
        "precision_at_3",
        "recall_top1pct",
        "recall_top5pct",
        "recall_top10pct",
        "pct_p50",
        "auroc_lo",
        "auroc_hi",
    ):
        assert col in m
    assert m["auroc"].between(0, 1).all()
    ev = scored / "evaluation"
    for name in ("metrics.csv", "purity.csv", "roc.png", "pr.png", "percentiles.png"):
        assert (ev / name).is_file()
    assert len(pd.read_csv(ev / "metrics.csv")) == len(m)
    purity = result["purity"].set_index("bpt_class")
    assert purity.loc["all", "n"] == len(store)


def test_a_known_ranking_gives_known_metrics(scored, store, tmp_path):
    cat = pd.read_parquet(scored / "catalogue.parquet")
    ranked = cat.sort_values("rank")["plateifu"].tolist()
    positives = [ranked[0], ranked[2], ranked[5]]  # ranks 1, 3 and 6 of 24
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"plateifu": cat["plateifu"], "flag": cat["plateifu"].isin(positives)}).to_csv(
        labels
    )
    m = evaluate(scored, labels, EvaluateConfig(label_column="flag", **FAST))["metrics"]
    m = m.set_index("score").loc["headline"]
    # by hand: 21, 20 and 18 of the 21 negatives rank below the three positives
    assert m["auroc"] == pytest.approx(59 / 63)
    assert m["average_precision"] == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    assert m["precision_at_3"] == pytest.approx(2 / 3)
    assert m["recall_top10pct"] == pytest.approx(2 / 3)  # the top 3 of 24 hold 2 of 3


def test_out_of_sample_paired_comparisons_and_noise_dependence(scored, store, tmp_path):
    from linecube.analysis.layout import AnalysisDir

    n = len(store)
    split = np.array(["train"] * 10 + ["val"] * 2 + ["holdout"] * (n - 12), dtype=object)
    AnalysisDir(scored).write_columns({"split": split})
    truth = pd.DataFrame(
        {
            "plateifu": store.catalogue["plateifu"],
            "class": ["star_forming", "retired"] * (n // 2),
        }
    )
    truth.loc[[12, 13], "class"] = "seyfert"
    truth.to_parquet(tmp_path / "truth.parquet")
    result = evaluate(
        scored,
        tmp_path / "truth.parquet",
        EvaluateConfig(label_column="class", per_class=True, compare=["ratio_iforest"], **FAST),
    )
    assert result["notes"][0] == f"evaluated: {n - 12} galaxies the network did not train on"
    assert (result["metrics"]["n"] == n - 12).all()
    pairs = result["comparisons"]
    assert set(pairs.columns) >= {"score_a", "score_b", "auroc_diff_lo", "verdict"}
    row = pairs[(pairs.label == "seyfert") & (pairs.score_a == "headline")
                & (pairs.score_b == "score_ratio_iforest")].iloc[0]
    assert row.auroc_diff_lo <= row.auroc_diff <= row.auroc_diff_hi
    dependence = result["noise_dependence"]
    assert set(dependence["class"]) == {"star_forming", "retired"}
    assert dependence["spearman_noise_floor"].between(-1, 1).all()
    # NaN only where the fixture's galaxies all cover the same spaxels
    assert dependence["spearman_coverage"].dropna().between(-1, 1).all()
    for name in ("comparisons.csv", "noise_dependence.csv"):
        assert (scored / "evaluation" / name).is_file()
    with pytest.raises(ConfigError, match="trained on every galaxy"):
        AnalysisDir(scored).write_columns({"split": np.array(["train"] * n, dtype=object)})
        evaluate(scored, tmp_path / "truth.parquet",
                 EvaluateConfig(label_column="class", per_class=True, sample="out_of_sample",
                                **FAST))


def test_per_class_mangaid_and_baselines(scored, store, tmp_path):
    truth = pd.DataFrame(
        {
            "mangaid": store.catalogue["mangaid"],
            "class": ["seyfert"] + ["star_forming"] * (len(store) - 1),
        }
    )
    truth.to_parquet(tmp_path / "truth.parquet")
    result = evaluate(
        scored,
        tmp_path / "truth.parquet",
        EvaluateConfig(
            label_column="class",
            per_class=True,
            compare=["pca", "ratio_iforest"],
            pca_components=2,
            **FAST,
        ),
    )
    m = result["metrics"]
    assert set(m["label"]) == {"seyfert", "star_forming"}
    assert {"score_pca", "score_ratio_iforest"} <= set(m["score"])
    # the Seyfert's line ratios are extreme: the line-ratio forest ranks it first
    row = m[(m.label == "seyfert") & (m.score == "score_ratio_iforest")].iloc[0]
    assert row["auroc"] == 1.0
    assert (scored / "evaluation" / "baseline_scores.parquet").is_file()
    assert "score_pca" not in pd.read_parquet(scored / "catalogue.parquet")


def test_compare_with_another_analysis(scored, store, tmp_path):
    labels = _agn_vac(tmp_path / "agn.fits", store, [0])
    m = evaluate(scored, labels, EvaluateConfig(compare=[f"conv2d={scored}"], **FAST))["metrics"]
    assert "conv2d:score_combined" in set(m["score"])
    with pytest.raises(InputFileError, match="neither a baseline"):
        evaluate(scored, labels, EvaluateConfig(compare=["nope"], **FAST))


def test_label_table_errors(scored, tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"name": ["a"], "AGN": [1]}).to_csv(bad, index=False)
    with pytest.raises(InputFileError, match="no PLATEIFU or MANGAID column.*name, AGN"):
        evaluate(scored, bad, EvaluateConfig(label_column="AGN", **FAST))
    table = pd.DataFrame({"plateifu": ["1-1"], "kind": ["x"]})
    with pytest.raises(InputFileError, match="holds text.*--positive"):
        label_vector(table, "t.csv", "kind", None)
    with pytest.raises(InputFileError, match="no label column given"):
        label_vector(table, "t.csv", None, None)
    with pytest.raises(InputFileError, match="label table not found"):
        read_table(tmp_path / "missing.fits")
    with pytest.raises(ConfigError, match="per_class needs label_column"):
        evaluate(scored, bad, EvaluateConfig(per_class=True, **FAST))


def test_match_labels_prefers_plateifu_and_marks_unmatched():
    cat = pd.DataFrame({"plateifu": ["1-1", "1-2", "1-3"], "mangaid": ["a", "a", "b"]})
    by_mangaid = pd.DataFrame({"MANGAID": ["a"]})
    got, kind = match_labels(cat, by_mangaid, "t", np.array([1]))
    assert kind == "mangaid" and list(got) == [1, 1, -1]
    by_plateifu = pd.DataFrame({"PLATEIFU": ["1-2", "1-3"], "MANGAID": ["a", "b"]})
    got, kind = match_labels(cat, by_plateifu, "t", np.array([1, 0]))
    assert kind == "plateifu" and list(got) == [-1, 1, 0]


def test_bpt_purity_by_hand():
    mu = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.3]])
    classes = np.array(["SF", "SF", "Seyfert", "Seyfert", "Seyfert", "invalid"])
    p = bpt_purity(mu, classes, 1).set_index("bpt_class")
    # neighbours: 0->1 (SF ok), 1->0 (ok), 2->1 (SF, miss), 3->4 (ok), 4->3 (ok); 5 excluded
    assert p.loc["SF", "purity"] == 1.0 and p.loc["Seyfert", "purity"] == pytest.approx(2 / 3)
    assert p.loc["all", "purity"] == pytest.approx(4 / 5) and p.loc["all", "n"] == 5


def test_unmatched_policy():
    positives_only, mixed = np.array([1, 1]), np.array([1, 0])
    assert unmatched_policy("auto", positives_only) == "negative"
    assert unmatched_policy("auto", mixed) == "drop"
    assert unmatched_policy("drop", positives_only) == "drop"
    assert unmatched_policy("negative", mixed) == "negative"


def test_noise_dependence_inside_each_normal_class():
    # Inside star_forming the score rises with coverage and falls with noise; retired has too
    # few galaxies (2 < 3) to correlate and is left out; seyfert is not a normal class.
    classes = np.array(["star_forming"] * 5 + ["retired"] * 2 + ["seyfert"])
    coverage = np.array([10.0, 20, 30, 40, 50, 5, 6, 7])
    floor = np.array([5.0, 4, 3, 2, 1, 1, 2, 3])
    scores = pd.DataFrame({"s": [0.1, 0.2, 0.3, 0.5, 0.4, 9, 9, 9]})
    table = noise_dependence(scores, {"noise_floor": floor, "coverage": coverage}, classes,
                             ["star_forming", "retired"])
    assert table["class"].tolist() == ["star_forming"]
    row = table.iloc[0]
    assert row["n"] == 5
    assert row["spearman_coverage"] == pytest.approx(0.9)
    assert row["spearman_noise_floor"] == pytest.approx(-0.9)
    constant = noise_dependence(scores, {"coverage": np.full(8, 7.0)}, classes, ["star_forming"])
    assert np.isnan(constant["spearman_coverage"].iloc[0])
