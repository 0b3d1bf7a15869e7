import pandas as pd
import pytest

from linecube.cli import main
from linecube.viz.report import build_report


@pytest.mark.slow
def test_report_files_and_escaping(analysis_dir, tmp_path, xss_label):
    index = build_report(analysis_dir, tmp_path / "report", top=2,
                         labels=analysis_dir.parent / "labels.csv")
    page = index.read_text()
    figs = tmp_path / "report" / "figures"
    for stem in ("scores", "umap"):
        assert (figs / f"{stem}.png").stat().st_size > 1000
        assert (figs / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    assert len(list(figs.glob("anomaly_*.png"))) == 2 == len(list(figs.glob("anomaly_*.pdf")))
    assert page.count("data:image/png;base64,") == 4  # scores, umap, 2 anomalies
    cat = pd.read_parquet(analysis_dir / "catalogue.parquet").sort_values("rank")
    assert cat.plateifu.iloc[0] in page and cat.plateifu.iloc[1] in page
    assert "auroc" in page and "0.81" in page  # evaluation table
    assert xss_label not in page and "&lt;script&gt;window.__xss" in page


def test_report_says_what_is_missing(analysis_factory, tmp_path):
    analysis = analysis_factory(recon=False, labels=False)
    cat = pd.read_parquet(analysis / "catalogue.parquet")
    cat.drop(columns=["umap_x", "umap_y"]).to_parquet(analysis / "catalogue.parquet")
    for f in (analysis / "evaluation").iterdir():
        f.unlink()
    page = build_report(analysis, tmp_path / "r", top=0).read_text()
    assert "run `linecube umap` first" in page
    assert "recon.zarr was not written" in page
    assert "run `linecube evaluate`" in page


def test_cli_report(analysis_dir, tmp_path, capsys):
    assert main(["report", str(analysis_dir), "--out", str(tmp_path / "r"), "--top", "0",
                 "--labels", str(analysis_dir.parent / "labels.csv"), "--label-columns", "is_agn"]) == 0
    assert "labels.csv (is_agn)" in (tmp_path / "r" / "index.html").read_text()
    assert "report written to" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r2")]) == 2
    assert "no analysis.json" in capsys.readouterr().err
