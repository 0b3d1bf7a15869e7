import numpy as np
import pytest
from astropy.io import fits

from linecube.errors import InputFileError
from linecube.io.dapall import DR17_DAPTYPES, deduplicate, read_dapall, write_dapall


def _rows():
    return {
        "PLATEIFU": ["8485-1901", "8486-1902", "9000-3701", "9001-3702", "9002-6101"],
        "MANGAID": ["1-1", "1-1", "1-2", "1-2", "1-3"],
        "SNR_MED": [np.array([1, 5, 2, 3.0]), np.array([1, 9, 2, 3.0]),
                    np.array([1, 20, 2, 3.0]), np.array([1, 4, 2, 3.0]),
                    np.array([1, 4, 2, 3.0])],
        "DAPQUAL": [0, 0, 1 << 30, 0, 0],
        "Z": [0.02, 0.02, 0.03, 0.03, 0.05],
        "EMLINE_GFLUX_1RE": [np.arange(35.0) + i for i in range(5)],
        "DAPDONE": [True, True, True, True, False],
    }


def test_layout_and_round_trip(tmp_path):
    path = tmp_path / "dapall.fits"
    write_dapall(path, _rows())
    with fits.open(path, checksum=True) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", *DR17_DAPTYPES]
        assert hdul[0].header["ELG24"] == "Ha-6564" and hdul[0].header["ELS1"] == "OIId-3728"
        assert hdul[0].header["VERSDAP"] == "3.1.0"
    df = read_dapall(path)
    assert list(df["PLATEIFU"]) == ["8485-1901", "8486-1902", "9000-3701", "9001-3702"]
    assert df.attrs["ELG"][23] == "Ha-6564" and len(df.attrs["ELG"]) == 35
    np.testing.assert_array_equal(df["EMLINE_GFLUX_1RE"][1], np.arange(35.0) + 1)
    assert list(df["PLATE"]) == [8485, 8486, 9000, 9001]
    assert (df["DAPTYPE"] == "HYB10-MILESHC-MASTARSSP").all()
    assert len(read_dapall(path, done_only=False)) == 5


def test_daptype_column_splits_rows(tmp_path):
    rows = _rows()
    rows["DAPTYPE"] = ["HYB10-MILESHC-MASTARSSP"] * 3 + ["SPX-MILESHC-MASTARSSP"] * 2
    path = tmp_path / "d.fits"
    write_dapall(path, rows)
    assert len(read_dapall(path, done_only=False)) == 3
    assert len(read_dapall(path, "SPX-MILESHC-MASTARSSP", done_only=False)) == 2


def test_dedupe_rule(tmp_path):
    path = tmp_path / "d.fits"
    write_dapall(path, _rows())
    df = read_dapall(path, dedupe=True)
    # 1-1: highest r-band S/N wins; 1-2: the CRITICAL row loses despite S/N 20.
    assert list(df["PLATEIFU"]) == ["8486-1902", "9001-3702"]
    tie = deduplicate(read_dapall(path, done_only=False).assign(SNR_MED=[np.ones(4)] * 5))
    assert list(tie["PLATEIFU"]) == ["8485-1901", "9001-3702", "9002-6101"]


def test_bad_dapall_files(tmp_path):
    path = tmp_path / "d.fits"
    write_dapall(path, _rows(), daptypes=["VOR10-MILESHC-MASTARSSP"])
    with pytest.raises(InputFileError, match="no DAPTYPE HDU 'HYB10-MILESHC-MASTARSSP'.*VOR10"):
        read_dapall(path)
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"x" * 5000)
    with pytest.raises(InputFileError, match="not a readable DAPall"):
        read_dapall(junk)
    rows = _rows()
    del rows["DAPDONE"]
    bare = tmp_path / "bare.fits"
    write_dapall(bare, rows)
    with fits.open(bare) as hdul:
        hdu = hdul["HYB10-MILESHC-MASTARSSP"]
        cols = [c for c in hdu.columns if c.name != "DAPDONE"]
        fits.HDUList([hdul[0], fits.BinTableHDU.from_columns(
            cols, name="HYB10-MILESHC-MASTARSSP")]).writeto(bare, overwrite=True)
    with pytest.raises(InputFileError, match="lacks column\\(s\\) DAPDONE"):
        read_dapall(bare)
