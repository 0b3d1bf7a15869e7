"""The analysis verbs end to end on a tiny store with a real (untrained) model file."""

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from analysis_fixtures import make_store  # noqa: E402

from linecube.cli import main  # noqa: E402


@pytest.fixture
def model_file(tmp_path):
    from linecube.models import build_model
    from linecube.models.config import ModelConfig
    from linecube.store import StoreMeta
    from linecube.training.config import TrainConfig
    from linecube.training.modelfile import save_model

    store = make_store(tmp_path / "store", n=16)
    cfg = TrainConfig(model=ModelConfig(kind="vae", stem_channels=0, hidden=[4], latent_dim=3))
    model = build_model(cfg.model, len(store.meta.lines), store.meta.size)
    meta = StoreMeta.model_validate(store.meta.model_dump())
    # the run's split, as train writes it: the second half validated (and calibrates)
    split = store.catalogue[["plateifu", "mangaid"]].assign(split="train")
    split.loc[8:, "split"] = "val"
    split.to_parquet(tmp_path / "split.parquet")
    return save_model(tmp_path / "model.safetensors", model, cfg, meta), store


def test_embed_needs_a_calibration_and_takes_another_analysis_one(tmp_path, model_file, capsys):
    path, store = model_file
    common = ["--model", str(path), "--store", str(store.path), "--no-progress"]
    assert main(["embed", *common, "--out", str(tmp_path / "a")]) == 0
    calibration = tmp_path / "a" / "calibration.json"
    assert calibration.is_file()
    (tmp_path / "split.parquet").unlink()  # a model file without its run directory
    assert main(["embed", *common, "--out", str(tmp_path / "b")]) == 2
    assert "no residual calibration" in capsys.readouterr().err
    assert main(["embed", *common, "--out", str(tmp_path / "b"),
                 "--calibration", str(calibration)]) == 0
    a = pd.read_parquet(tmp_path / "a" / "catalogue.parquet")
    b = pd.read_parquet(tmp_path / "b" / "catalogue.parquet")
    pd.testing.assert_series_equal(a["score_resid_peak"], b["score_resid_peak"])
    assert (b["split"] == "unseen").all() and set(a["split"]) == {"train", "val"}


@pytest.mark.slow
def test_verbs_end_to_end(tmp_path, model_file, capsys):
    path, store = model_file
    out = tmp_path / "analysis"
    assert (
        main(
            [
                "embed",
                "--model",
                str(path),
                "--store",
                str(store.path),
                "--out",
                str(out),
                "--batch-size",
                "4",
                "--save-recon",
                "--no-progress",
            ]
        )
        == 0
    )
    assert main(["score", str(out), "--k", "4", "--top", "3"]) == 0
    text = capsys.readouterr().out
    assert "worst_line" in text and "flag" in text
    assert main(["bpt", str(out), "--no-progress", "--sn-min", "3"]) == 0
    assert (
        main(["similar", str(out), "8003-1904", "--k", "3", "--csv", str(tmp_path / "n.csv")]) == 0
    )
    assert len(pd.read_csv(tmp_path / "n.csv")) == 3
    assert main(["umap", str(out), "--n-neighbors", "5", "--n-epochs", "20", "--seed", "1"]) == 0
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"PLATEIFU": store.catalogue["plateifu"], "is_agn": [1, 0] * 8}).to_csv(
        labels, index=False
    )
    assert (
        main(
            [
                "evaluate",
                str(out),
                "--labels",
                str(labels),
                "--n-bootstrap",
                "20",
                "--top-k",
                "3",
                "--purity-k",
                "2",
            ]
        )
        == 0
    )
    cat = pd.read_parquet(out / "catalogue.parquet")
    for col in (
        "score_recon",
        "score_combined",
        "rank",
        "bpt_class",
        "whan_class",
        "umap_x",
        "umap_y",
    ):
        assert col in cat
    assert (out / "evaluation" / "metrics.csv").is_file()


def test_clear_errors(tmp_path, model_file, capsys):
    path, store = model_file
    out = tmp_path / "analysis"
    # scores before embeddings
    assert main(["bpt", str(out), "--store", str(store.path), "--no-progress"]) == 0
    assert main(["score", str(out)]) == 2
    assert "run `linecube embed` first" in capsys.readouterr().err
    # a model and a store that disagree
    other = make_store(tmp_path / "other", n=3, size=16)
    assert (
        main(
            [
                "embed",
                "--model",
                str(path),
                "--store",
                str(other.path),
                "--out",
                str(tmp_path / "b"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "map size differs (model: 8, store: 16)" in capsys.readouterr().err
    # unknown PLATEIFU
    main(
        [
            "embed",
            "--model",
            str(path),
            "--store",
            str(store.path),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    capsys.readouterr()
    assert main(["similar", str(out), "8003-194"]) == 2
    assert "did you mean 8003-1904" in capsys.readouterr().err
    # a label table without an ID column
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"galaxy": ["x"], "is_agn": [1]}).to_csv(labels, index=False)
    main(["score", str(out), "--k", "3"])
    capsys.readouterr()
    assert main(["evaluate", str(out), "--labels", str(labels)]) == 2
    assert "its columns are: galaxy, is_agn" in capsys.readouterr().err
    # unknown config key
    cfg = tmp_path / "score.toml"
    cfg.write_text("k = 3\nneighbours = 5\n")
    assert main(["score", str(out), "--config", str(cfg)]) == 2
    assert "key 'neighbours': unknown key" in capsys.readouterr().err
