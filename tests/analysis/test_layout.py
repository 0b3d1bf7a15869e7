import numpy as np
import pandas as pd
import pytest
import zarr
from analysis_fixtures import make_store
from astropy.table import Table

from linecube.analysis.layout import AnalysisDir
from linecube.errors import InputFileError


def test_columns_are_added_replaced_and_kept(store, tmp_path):
    adir = AnalysisDir(tmp_path / "a")
    adir.open_store(store.path)
    n = len(store)
    adir.write_columns({"a": np.arange(n), "b": ["x"] * n}, store)
    cat = adir.write_columns({"a": np.arange(n) * 2.0, "c": np.ones(n, bool)}, drop=["b"])
    assert list(cat.columns) == ["row", "plateifu", "mangaid", "a", "c"]
    assert list(cat["a"]) == list(np.arange(n) * 2.0)
    fits = Table.read(tmp_path / "a" / "catalogue.fits")
    assert list(fits["plateifu"]) == list(store.catalogue["plateifu"]) and fits["c"].all()
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(ValueError, match="rows given"):
        adir.write_columns({"a": [1]})


def test_arrays_replace_atomically(tmp_path):
    adir = AnalysisDir(tmp_path / "a")
    adir.write_arrays("x.zarr", {"v": np.zeros((2, 3))})
    adir.write_arrays("x.zarr", {"v": np.ones((4, 3))})
    assert zarr.open_group(tmp_path / "a" / "x.zarr", mode="r")["v"][:].sum() == 12
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["x.zarr"]


def test_one_store_per_analysis(store, tmp_path):
    adir = AnalysisDir(tmp_path / "a")
    adir.open_store(store.path)
    other = make_store(tmp_path / "other", n=2)
    with pytest.raises(InputFileError, match="belongs to the store"):
        adir.open_store(other.path)
    with pytest.raises(InputFileError, match="pass --store"):
        AnalysisDir(tmp_path / "b").open_store()
    pd.DataFrame({"row": [0]}).to_parquet(tmp_path / "a" / "catalogue.parquet")
    with pytest.raises(InputFileError, match="store changed"):
        adir.catalogue(store)
