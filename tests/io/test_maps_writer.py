import gzip
import hashlib
import warnings

import numpy as np
import pytest
from astropy.io import fits

from linecube.io.maps_writer import (
    DEFAULT_EXTENSIONS,
    channel_key,
    layout,
    maps_filename,
    write_maps,
)
from linecube.lines import DR15_LINES, DR17_LINES


def test_layouts_have_the_documented_hdu_counts_and_order():
    dr17 = ["PRIMARY"] + [e.name for e in layout("dr17")]
    dr15 = ["PRIMARY"] + [e.name for e in layout("dr15")]
    assert len(dr17) == 64 and len(dr15) == 48
    assert dr17.index("EMLINE_SFLUX") == 23 and dr17.index("EMLINE_GFLUX") == 30
    assert dr17.index("EMLINE_GVEL") == 37 and dr17.index("EMLINE_LFOM") == 48
    assert dr17[-1] == "SPECINDEX_WGT_MODEL"
    assert dr15.index("EMLINE_GFLUX") == 30 and dr15[-1] == "SPECINDEX_CORR"
    assert "STELLAR_CONT_FRESID" in dr15 and "STELLAR_FOM" not in dr15
    assert "EMLINE_GA" not in dr15 and "EMLINE_SEW_CNT" not in dr15


def test_channel_keys_are_padded_to_the_digits_needed():
    assert [channel_key(i, 5) for i in range(5)] == ["C1", "C2", "C3", "C4", "C5"]
    assert channel_key(0, 35) == "C01" and channel_key(34, 35) == "C35"


@pytest.mark.parametrize("release,n_hdu,n_lines,n_ell", [("dr17", 64, 35, 4), ("dr15", 48, 22, 3)])
def test_full_file_matches_the_real_layout(tmp_path, release, n_hdu, n_lines, n_ell):
    path = tmp_path / "m.fits"
    flux = np.arange(n_lines * 9 * 9, dtype=np.float32).reshape(n_lines, 9, 9)
    write_maps(path, {"EMLINE_GFLUX": flux}, {"PLATEIFU": "7815-3702", "DAPQUAL": 0},
               release=release, full=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a bad checksum would warn
        with fits.open(path, checksum=True) as hdul:
            assert len(hdul) == n_hdu
            g = hdul["EMLINE_GFLUX"]
            assert g.data.dtype == np.dtype(">f4")
            assert hdul["EMLINE_GFLUX_MASK"].data.dtype == np.dtype(">i4")
            assert hdul["BINID"].data.dtype == np.dtype(">i4")
            assert hdul["SPX_ELLCOO"].data.shape == (n_ell, 9, 9)
            np.testing.assert_array_equal(g.data, flux)
            raw = str(g.header.cards["C01"])  # the card image keeps the trailing blank
            assert "'OII-3727 '" in raw
            names = [g.header[f"C{i + 1:02d}"] for i in range(n_lines)]
            lines = DR17_LINES if release == "dr17" else DR15_LINES
            assert [n.strip() for n in names] == [ln.name for ln in lines]
            assert g.header["HDUCLASS"] == "SDSS" and g.header["HDUCLAS1"] == "CUBE"
            assert g.header["HDUCLAS2"] == "DATA"
            assert g.header["ERRDATA"] == "EMLINE_GFLUX_IVAR"
            assert g.header["QUALDATA"] == "EMLINE_GFLUX_MASK"
            assert g.header["BUNIT"] == "1E-17 erg/s/cm^2/spaxel"
            iv = hdul["EMLINE_GFLUX_IVAR"].header
            assert (iv["HDUCLAS2"], iv["HDUCLAS3"], iv["SCIDATA"]) == ("ERROR", "INVMSE",
                                                                       "EMLINE_GFLUX")
            mk = hdul["EMLINE_GFLUX_MASK"].header
            assert (mk["HDUCLAS2"], mk["HDUCLAS3"], mk["ERRDATA"]) == ("QUALITY", "FLAG32BIT",
                                                                       "EMLINE_GFLUX_IVAR")
            assert all(h.header["MASKNAME"] == "MANGA_DAPPIXMASK" for h in hdul[1:])
            assert all("BUNIT" in h.header for h in hdul[1:])
            assert hdul["EMLINE_GFLUX_IVAR"].header["BUNIT"] == "(1E-17 erg/s/cm^2/spaxel)^{-2}"
            assert all("CHECKSUM" in h.header and "DATASUM" in h.header for h in hdul)
            assert hdul["BINID"].header["C5"].strip() == "Spectral indices"
            assert hdul["SPX_SNR"].header["HDUCLAS1"] == "IMAGE"
            assert hdul[0].header["PLATEIFU"] == "7815-3702"


def test_default_layout_writes_required_extensions_as_zeros(tmp_path):
    path = tmp_path / "m.fits"
    write_maps(path, {"STELLAR_VEL": np.ones((9, 9))}, {"PLATEIFU": "1-2"})
    with fits.open(path) as hdul:
        names = [h.name for h in hdul]
        assert names[0] == "PRIMARY" and set(DEFAULT_EXTENSIONS) | {"STELLAR_VEL"} <= set(names)
        assert len(names) == 1 + len(DEFAULT_EXTENSIONS) + 1
        assert not hdul["EMLINE_GFLUX"].data.any()
        assert hdul["EMLINE_GFLUX"].data.shape == (35, 9, 9)


def test_gzip_output_is_deterministic_and_valid(tmp_path):
    arrays = {"EMLINE_GFLUX": np.ones((35, 6, 6), np.float32)}
    a, b = tmp_path / "a.fits.gz", tmp_path / "b.fits.gz"
    write_maps(a, arrays, {"PLATEIFU": "1-2"})
    write_maps(b, arrays, {"PLATEIFU": "1-2"})
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert gzip.decompress(a.read_bytes())[:6] == b"SIMPLE"
    assert not list(tmp_path.glob(".*tmp"))


def test_wrong_channel_count_or_unknown_extension_raises(tmp_path):
    with pytest.raises(ValueError, match="expected \\(35, 6, 6\\)"):
        write_maps(tmp_path / "x.fits", {"EMLINE_GFLUX": np.ones((22, 6, 6))}, {})
    with pytest.raises(ValueError, match="EMLINE_GA"):
        write_maps(tmp_path / "x.fits", {"EMLINE_GA": np.ones((22, 6, 6))}, {}, release="dr15")


def test_maps_filename():
    assert maps_filename("8485-1901") == "manga-8485-1901-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz"
