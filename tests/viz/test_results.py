import json

import numpy as np
import pandas as pd
import pytest

from linecube.errors import InputFileError
from linecube.viz.results import AnalysisResults


def test_open_reads_columns_and_maps(analysis_dir):
    res = AnalysisResults.open(analysis_dir)
    assert len(res) == 12 and res.lines == ["Hb-4862", "OIII-5008", "Ha-6564", "NII-6585"]
    assert res.score_columns[0] == "score_combined"
    assert res.line_score_columns == [f"score_recon_{ln}" for ln in res.lines]
    assert res.label_columns == ["sim_class", "is_agn"]
    assert res.class_columns == ["bpt_class", "whan_class", "sim_class", "is_agn"]
    maps = res.galaxy(3)
    assert maps.x.shape == (4, 16, 16) and maps.bpt.shape == (16, 16)
    res_map = maps.residual
    assert np.isnan(res_map[~maps.weight]).all() and np.isfinite(res_map[maps.weight]).all()
    np.testing.assert_allclose(res_map[maps.weight], (maps.x - maps.recon)[maps.weight])
    assert res.latents().shape == (12, 6)
    assert list(res.evaluation_tables()) == ["auroc"]


def test_missing_recon_is_reported_not_invented(analysis_factory):
    res = AnalysisResults.open(analysis_factory(recon=False))
    assert not res.has_recon and res.galaxy(0).recon is None and res.galaxy(0).residual is None


def test_errors_name_file_and_reason(analysis_dir, tmp_path):
    with pytest.raises(InputFileError, match="no analysis.json"):
        AnalysisResults.open(tmp_path)
    cat = pd.read_parquet(analysis_dir / "catalogue.parquet")
    cat.drop(columns="rank").to_parquet(analysis_dir / "catalogue.parquet")
    with pytest.raises(InputFileError, match="catalogue.parquet: column 'rank' does not exist yet"):
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
