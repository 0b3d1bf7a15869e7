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


def test_demo_steps_are_announced_and_timed(tmp_path):
    from linecube.demo import _Demo

    lines = []
    demo = _Demo(tmp_path, seed=0, echo=lines.append)
    assert demo.store == tmp_path / "store" and demo.analysis == tmp_path / "analysis"
    with demo.step("first"):
        pass
    with pytest.raises(RuntimeError), demo.step("broken"):
        raise RuntimeError("stop")
    assert set(demo.timings) == {"first", "broken"} and demo.timings["first"] >= 0
    assert lines[0] == "[demo] first ..." and lines[1].startswith("[demo] first: done in")
    assert lines[2:] == ["[demo] broken ..."]  # no "done" line for a step that failed


def test_demo_prints_the_best_score_per_class():
    import pandas as pd

    from linecube.demo import _echo_per_class

    lines = []
    per_class = {
        "pixel": pd.DataFrame({"kind": ["all", "agn"], "pixel_auroc": [0.8, 0.9]}),
        "metrics": pd.DataFrame({"label": ["a", "a", "b"], "score": ["s1", "s2", "s1"],
                                 "auroc": [0.6, 0.7, 0.55]}),
    }
    _echo_per_class(per_class, lines.append)
    assert "pixel AUROC 0.80" in lines[0]
    assert [line.split() for line in lines[2:]] == [["a", "s2", "0.70"], ["b", "s1", "0.55"]]
