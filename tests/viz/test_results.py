import json

import numpy as np
import pandas as pd
import pytest

from linecube.errors import InputFileError
from linecube.viz.results import AnalysisResults, default_label_columns, read_labels


def test_open_reads_columns_and_maps(analysis_dir):
    res = AnalysisResults.open(analysis_dir)
    assert len(res) == 12 and res.lines == ["Hb-4862", "OIII-5008", "Ha-6564", "NII-6585"]
    assert res.score_columns[0] == "score_combined"
    assert res.line_score_columns == [f"score_recon_{ln}" for ln in res.lines]
    assert "score_recon_Ha-6564" not in res.overall_score_columns
    assert res.label_columns == []  # flag_anomaly is a class column, not a label
    assert res.class_columns == ["bpt_class", "whan_class", "flag_anomaly"]
    maps = res.galaxy(3)
    assert maps.x.shape == (4, 16, 16) and maps.bpt.shape == (16, 16)
    res_map = maps.residual
    assert np.isnan(res_map[~maps.weight]).all() and np.isfinite(res_map[maps.weight]).all()
    np.testing.assert_allclose(res_map[maps.weight], (maps.x - maps.recon)[maps.weight])
    block = list(res.galaxies(2, 5))
    np.testing.assert_array_equal(block[1].x, maps.x)
    assert res.latents().shape == (12, 6)
    assert list(res.evaluation_tables()) == ["auroc"]


def test_percentiles_prefer_the_analysis_columns(analysis_dir):
    res = AnalysisResults.open(analysis_dir)
    cat = res.catalogue
    np.testing.assert_allclose(res.percentile("score_combined"), cat["pct_combined"])
    res.catalogue = cat.drop(columns="pct_combined")
    np.testing.assert_allclose(res.percentile("score_combined"),
                               cat["score_combined"].rank(pct=True) * 100)
    assert res.line_percentiles.shape == (12, 4)
    assert res.why_anomalous(0).startswith("OIII-5008 (100)")  # galaxy 0's bad line


def test_labels_from_a_table(analysis_dir, xss_label):
    labels = analysis_dir.parent / "labels.csv"
    res = AnalysisResults.open(analysis_dir, labels=labels)
    assert res.label_columns == ["class", "is_agn"]
    assert res.catalogue["class"].iloc[9] == xss_label
    assert res.catalogue["is_agn"].iloc[:4].tolist() == ["True", "False", "False", "True"]
    assert res.catalogue["class"].iloc[11] == "unmatched"  # not in the table
    picked = read_labels(res.catalogue, labels, ["Z"])  # any case; numeric is shown as text
    assert list(picked) == ["z"] and picked["z"].iloc[0] == "0.01"


def test_default_label_columns():
    truth = pd.DataFrame(columns=["plateifu", "class", "is_agn", "WISE_AGN", "z"])
    assert default_label_columns(truth) == ["class", "is_agn"]
    vac = pd.DataFrame(columns=["MANGAID", "WISE_AGN", "BROAD_AGN", "RA"])
    assert default_label_columns(vac) == ["WISE_AGN", "BROAD_AGN"]


def test_label_errors_name_the_table(analysis_dir, tmp_path):
    cat = AnalysisResults.open(analysis_dir).catalogue
    labels = analysis_dir.parent / "labels.csv"
    with pytest.raises(InputFileError, match="labels.csv: no label column 'kind'; the columns"):
        read_labels(cat, labels, ["kind"])
    pd.DataFrame({"PLATEIFU": ["8000-1901"], "mass": [10.5]}).to_csv(tmp_path / "m.csv")
    with pytest.raises(InputFileError, match="none recognised"):
        read_labels(cat, tmp_path / "m.csv")
    pd.DataFrame({"name": ["x"], "class": ["y"]}).to_csv(tmp_path / "n.csv")
    with pytest.raises(InputFileError, match="no PLATEIFU or MANGAID column"):
        read_labels(cat, tmp_path / "n.csv")


def test_missing_recon_is_reported_not_invented(analysis_factory):
    res = AnalysisResults.open(analysis_factory(recon=False))
    assert not res.has_recon and res.galaxy(0).recon is None and res.galaxy(0).residual is None


def test_errors_name_file_and_reason(analysis_dir, tmp_path):
    with pytest.raises(InputFileError, match="no analysis.json"):
        AnalysisResults.open(tmp_path)
    cat = pd.read_parquet(analysis_dir / "catalogue.parquet")
    cat.drop(columns="rank").to_parquet(analysis_dir / "catalogue.parquet")
    with pytest.raises(InputFileError, match="catalogue.parquet: column 'rank' does not exist"):
        AnalysisResults.open(analysis_dir)
    cat.iloc[:5].to_parquet(analysis_dir / "catalogue.parquet")
    with pytest.raises(InputFileError, match="5 rows but the store"):
        AnalysisResults.open(analysis_dir)
    (analysis_dir / "analysis.json").write_text("{not json")
    with pytest.raises(InputFileError, match="analysis.json: corrupt analysis metadata"):
        AnalysisResults.open(analysis_dir)


def test_line_mismatch_with_store(analysis_dir):
    info = json.loads((analysis_dir / "analysis.json").read_text())
    info["lines"] = ["Ha-6564"]
    (analysis_dir / "analysis.json").write_text(json.dumps(info))
    with pytest.raises(InputFileError, match="differ from the store"):
        AnalysisResults.open(analysis_dir)
