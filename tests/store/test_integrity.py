"""A corrupt store or analysis directory is an error naming the galaxy, never a silent fill."""

import shutil

import numpy as np
import pandas as pd
import pytest

from linecube.analysis.layout import AnalysisDir
from linecube.cli import main
from linecube.errors import InputFileError
from linecube.store import Store, StoreMeta

META = StoreMeta(lines=["Hb-4862", "Ha-6564"], size=8, preprocess={})


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    store = Store.create(tmp_path / "store", META)
    shape = (6, 2, 8, 8)
    store.append({"x": rng.normal(size=shape).astype("f4"), "weight": np.ones(shape, "u1"),
                  "ivar": np.ones(shape, "f4")},
                 [{"plateifu": f"8485-190{i}", "mangaid": f"1-{i}"} for i in range(6)])
    return tmp_path / "store"


def one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_a_sound_store_verifies(store, capsys):
    assert main(["inspect", str(store), "--verify"]) == 0
    assert "verified   6 galaxies" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["x", "weight", "ivar"])
def test_missing_chunk_names_the_galaxy(store, capsys, name):
    (store / "arrays.zarr" / name / "c" / "5" / "0" / "0" / "0").unlink()
    with pytest.raises(InputFileError, match=f"the {name} data of galaxy 8485-1905 \\(row 5\\) "
                       "are missing"):
        Store.open(store)
    err = one_line_error(capsys, ["inspect", str(store)])
    assert "8485-1905 (row 5)" in err


def test_arrays_shorter_than_the_catalogue(store):
    group_x = Store.open(store, mode="a").x
    group_x.resize((4, *group_x.shape[1:]))
    with pytest.raises(InputFileError, match="x holds 4 galaxies but the catalogue commits 6; "
                       "galaxies from 8485-1904 \\(row 4\\) on have no data"):
        Store.open(store)


def test_store_json_disagrees_with_the_arrays(store):
    text = (store / "store.json").read_text().replace('"size": 8', '"size": 16')
    (store / "store.json").write_text(text)
    with pytest.raises(InputFileError, match="store.json says float32 \\(N, 2, 16, 16\\)"):
        Store.open(store)


def test_truncated_catalogue_is_one_line_everywhere(store, capsys):
    path = store / "catalogue.parquet"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputFileError, match="corrupt or truncated Parquet table"):
        Store.open(store)
    one_line_error(capsys, ["inspect", str(store)])
    (store.parent / "maps").mkdir()
    one_line_error(capsys, ["ingest", str(store.parent / "maps"), "--out", str(store),
                            "--no-progress"])


def test_verify_finds_a_swapped_and_an_undecodable_chunk(store, capsys):
    chunks = store / "arrays.zarr" / "x" / "c"
    shutil.copyfile(chunks / "0" / "0" / "0" / "0", chunks / "2" / "0" / "0" / "0")
    (chunks / "4" / "0" / "0" / "0").write_bytes(b"garbage")
    assert len(Store.open(store)) == 6  # the cheap checks see every chunk present
    problems = Store.open(store).verify()
    assert problems[0] == ("galaxy 8485-1902 (row 2): arrays differ from the checksum "
                           "recorded at ingest")
    assert problems[1].startswith("galaxy 8485-1904 (row 4): unreadable arrays")
    err = one_line_error(capsys, ["inspect", str(store), "--verify"])
    assert "8485-1902 (row 2)" in err and "and 1 more" in err


def test_analysis_product_with_a_missing_chunk(store, tmp_path):
    adir = AnalysisDir(tmp_path / "analysis")
    opened = adir.open_store(store)
    adir.write_columns(pd.DataFrame({"score_recon": np.arange(6.0)}), opened)
    adir.write_arrays("latents.zarr", {"mu": np.ones((6, 3), "f4")}, chunks={"mu": (1, 3)})
    assert adir.latents()[0].shape == (6, 3)
    (tmp_path / "analysis" / "latents.zarr" / "mu" / "c" / "3" / "0").unlink()
    with pytest.raises(InputFileError, match="the data of galaxy 8485-1903 \\(row 3\\) are "
                       "missing; rerun `linecube embed`"):
        adir.latents()


def test_truncated_analysis_catalogue(store, tmp_path):
    adir = AnalysisDir(tmp_path / "analysis")
    adir.write_columns(pd.DataFrame({"score_recon": np.arange(6.0)}), adir.open_store(store))
    path = tmp_path / "analysis" / "catalogue.parquet"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(InputFileError, match="corrupt or truncated Parquet table"):
        adir.catalogue()
