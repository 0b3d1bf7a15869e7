import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table

from linecube.atomic import atomic_path, atomic_write_fits_table, atomic_write_json


def test_replaces_on_success_and_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "sub" / "table.csv"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["table.csv"]  # no temporary left


def test_suffix_for_format_sniffing_writers(tmp_path):
    with atomic_path(tmp_path / "plot.png", suffix=".png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "plot.png").read_bytes() == b"x"


def test_json_records_paths_and_numpy_values_and_refuses_others(tmp_path):
    target = tmp_path / "info.json"
    atomic_write_json(target, {"store": Path("/a/b"), "n": np.int64(3), "x": np.arange(2)})
    assert json.loads(target.read_text()) == {"store": "/a/b", "n": 3, "x": [0, 1]}
    assert target.read_text().endswith("}\n")
    with pytest.raises(TypeError, match="set"):
        atomic_write_json(tmp_path / "bad.json", {"s": {1}})
    assert not (tmp_path / "bad.json").exists()


def test_fits_table_round_trip_with_strings_booleans_and_extname(tmp_path):
    df = pd.DataFrame({"plateifu": ["7443-12703", "8485-1901"], "is_agn": [True, False],
                       "z": [0.03, 0.051]})
    atomic_write_fits_table(df, tmp_path / "t.fits", extname="TRUTH")
    with fits.open(tmp_path / "t.fits") as hdus:
        assert hdus[1].name == "TRUTH"
        data = hdus[1].data
        assert list(data["plateifu"]) == ["7443-12703", "8485-1901"]
        assert data.columns["is_agn"].format == "L"
        np.testing.assert_allclose(data["z"], [0.03, 0.051])
    empty = df.iloc[:0]
    atomic_write_fits_table(empty, tmp_path / "e.fits")
    assert len(Table.read(tmp_path / "e.fits")) == 0
