import pytest

from linecube.cli import main


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n", "40", "--epochs", "1", "--workers", "1",
                 "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "Top 3 anomalies" in printed and "Best score per simulated class" in printed
    assert (out / "report" / "index.html").stat().st_size > 10_000
    assert (out / "explorer" / "index.html").is_file()
    assert (out / "run" / "model.safetensors").is_file()
    evaluation = out / "analysis" / "evaluation"
    assert (evaluation / "metrics.csv").read_text().count("star_forming") >= 1
