import pandas as pd

from linecube.cli import main


def test_simulate_verb_writes_a_survey(tmp_path, capsys):
    config = tmp_path / "sim.toml"
    config.write_text("repeat_fraction = 0.0\nbundles = {19 = 2}\n[classes]\nseyfert = 1.0\n")
    out = tmp_path / "survey"
    rc = main(["simulate", "--n", "3", "--out", str(out), "--seed", "4", "--config", str(config),
               "--set", "classes.retired=0", "--no-progress"])
    assert rc == 0
    assert "3 observations of 3 galaxies" in capsys.readouterr().out
    truth = pd.read_parquet(out / "truth.parquet")
    assert len(truth) == 3 and set(truth["fibres"]) == {19}
    assert (out / "dapall-v3_1_1-3.1.0.fits").is_file() and (out / "agn_catalogue.fits").is_file()


def test_simulate_verb_reports_bad_config(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[classes]\nquasar = 0.1\n")
    rc = main(["simulate", "--n", "1", "--out", str(tmp_path / "s"), "--config", str(config)])
    assert rc == 2
    assert "bad.toml: key 'classes.quasar': unknown key" in capsys.readouterr().err
