import gzip
import re

import numpy as np
import pytest
from astropy.io import fits
from manga_fixtures import BOUND, CORNER, EDGE, fake_maps_arrays

from linecube.errors import ConfigError, InputFileError
from linecube.io.maps import fits_datasum, read_maps
from linecube.io.maps_writer import write_maps


def _astropy_channel(path, ext, name):
    """The plain-astropy reading of format doc §3.2."""
    with fits.open(path) as hdul:
        ch = {v.strip(): int(k[1:]) - 1 for k, v in hdul[ext].header.items()
              if k.startswith("C") and k[1:].isdigit()}
        return (hdul[ext].data[ch[name]].astype("f4"),
                hdul[f"{ext}_IVAR"].data[ch[name]].astype("f4"),
                hdul[f"{ext}_MASK"].data[ch[name]].astype("i4"))


@pytest.mark.parametrize("release,full", [("dr17", False), ("dr15", True)])
def test_reader_agrees_with_plain_astropy(maps_file, release, full):
    path = maps_file(release=release, full=full)
    gal = read_maps(path, lines="strong")
    assert gal.lines == ("Hb-4862", "OIII-5008", "OI-6302", "Ha-6564", "NII-6585",
                         "SII-6718", "SII-6732")
    assert gal.meta["release"] == release
    for i, name in enumerate(gal.lines):
        flux, ivar, mask = _astropy_channel(path, "EMLINE_GFLUX", name)
        np.testing.assert_array_equal(gal.flux[i], flux)
        np.testing.assert_array_equal(gal.ivar[i], ivar)
        np.testing.assert_array_equal(gal.mask[i], mask)
        np.testing.assert_array_equal(gal.good[i], ((mask & (1 << 30)) == 0) & (ivar > 0))
    assert gal.flux.dtype == np.float32 and gal.flux.dtype.isnative
    assert gal.mask.dtype == np.int32 and gal.mask.dtype.isnative


def test_channels_found_by_name_not_index(maps_file):
    """Ha is channel 24 in DR17 and 19 in DR15: both readings must give the Ha map."""
    a17 = fake_maps_arrays("dr17")
    a15 = fake_maps_arrays("dr15")
    a15["EMLINE_GFLUX"][18] = a17["EMLINE_GFLUX"][23]  # Ha-6564 in each release
    p17 = maps_file(name="a.fits", release="dr17", maps=a17)
    p15 = maps_file(name="b.fits", release="dr15", maps=a15)
    ha17 = read_maps(p17, lines=["Ha-6564"]).flux
    ha15 = read_maps(p15, lines=["Ha-6564"]).flux
    np.testing.assert_array_equal(ha17, ha15)
    nii = read_maps(p17, lines=["NII-6585"]).flux
    assert not np.array_equal(ha17, nii)


def test_metadata_from_the_primary_header(maps_file):
    gal = read_maps(maps_file(), lines="strong")
    assert gal.plateifu == "8485-1901" and gal.mangaid == "1-84851901"
    assert gal.meta["z"] == pytest.approx(8782.6 / 299792.458)
    assert gal.meta["psf_fwhm"] == pytest.approx(2.60)
    assert gal.meta["reff"] == pytest.approx(3.2)
    assert gal.meta["ifudesign"] == 1901 and gal.meta["daptype"] == "HYB10-MILESHC-MASTARSSP"
    assert gal.meta["ebvgal"] == pytest.approx(0.0172)
    assert gal.center == (6.0, 6.0)  # CRPIX = n/2 + 1 (1-based)


def test_exact_zeros_with_valid_ivar_are_good(maps_file):
    gal = read_maps(maps_file(), lines=["HeII-4687"])
    zeros = (gal.flux[0] == 0) & (gal.mask[0] == 0)
    assert zeros.sum() > 5
    assert gal.good[0][zeros].all()


def test_mask_policies(maps_file):
    path = maps_file()
    donotuse = read_maps(path, lines=["Ha-6564"]).good[0]
    strict = read_maps(path, lines=["Ha-6564"], mask="strict").good[0]
    nocov = read_maps(path, lines=["Ha-6564"], mask=["NOCOV"]).good[0]
    mask = read_maps(path, lines=["Ha-6564"]).mask[0]
    assert {CORNER, EDGE, BOUND} <= set(np.unique(mask).tolist())
    np.testing.assert_array_equal(donotuse, mask == 0)  # every flagged spaxel is DONOTUSE
    np.testing.assert_array_equal(strict, mask == 0)
    np.testing.assert_array_equal(nocov, (mask & 1) == 0)
    assert nocov.sum() > donotuse.sum()
    with pytest.raises(ConfigError, match="unknown mask bit"):
        read_maps(path, mask=["NOTABIT"])


def test_sflux_extension(maps_file):
    path = maps_file()
    gal = read_maps(path, lines=["Ha-6564"], extension="SFLUX")
    flux, _, _ = _astropy_channel(path, "EMLINE_SFLUX", "Ha-6564")
    np.testing.assert_array_equal(gal.flux[0], flux)


def test_plain_fits_and_default_preset(maps_file):
    gal = read_maps(maps_file(name="m.fits"))
    assert len(gal.lines) == 19 and gal.flux.shape == (19, 12, 12)


def test_nonfinite_masked_and_counted_or_rejected(maps_file):
    arrays = fake_maps_arrays()
    arrays["EMLINE_GFLUX"][23, 6, 6] = np.nan
    arrays["EMLINE_GFLUX_IVAR"][23, 6, 5] = np.inf
    path = maps_file(maps=arrays)
    gal = read_maps(path, lines=["Ha-6564"])
    assert gal.meta["n_nonfinite"] == 2
    assert not gal.good[0, 6, 6] and not gal.good[0, 6, 5]
    with pytest.raises(InputFileError, match="2 unmasked spaxels have NaN or Inf"):
        read_maps(path, lines=["Ha-6564"], nonfinite="reject")


def test_nan_in_masked_spaxel_is_ignored(maps_file):
    arrays = fake_maps_arrays()
    arrays["EMLINE_GFLUX"][23, 0, 0] = np.nan  # a NOCOV corner
    gal = read_maps(maps_file(maps=arrays), lines=["Ha-6564"], nonfinite="reject")
    assert gal.meta["n_nonfinite"] == 0


# ------------------------------------------------------------------ bad inputs
def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="file not found"):
        read_maps(tmp_path / "nope.fits.gz")


def test_not_a_fits_file(tmp_path):
    path = tmp_path / "junk.fits"
    path.write_text("this is not FITS\n" * 200)
    with pytest.raises(InputFileError) as err:
        read_maps(path)
    assert err.value.path == str(path) and "not a readable FITS file" in err.value.reason


def test_truncated_gzip(maps_file):
    path = maps_file()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="truncated or corrupt gzip") as err:
        read_maps(path)
    assert err.value.path == str(path)


def test_gzip_of_garbage(tmp_path):
    path = tmp_path / "g.fits.gz"
    path.write_bytes(gzip.compress(b"garbage" * 1000))
    with pytest.raises(InputFileError, match=str(path.name)):
        read_maps(path)


@pytest.mark.parametrize("missing", ["EMLINE_GFLUX", "EMLINE_GFLUX_IVAR", "EMLINE_GFLUX_MASK"])
def test_missing_emline_extension(tmp_path, missing):
    arrays = fake_maps_arrays()
    path = tmp_path / "m.fits"
    write_maps(path, arrays, {"PLATEIFU": "1-2"})
    with fits.open(path) as hdul:
        kept = fits.HDUList([h for h in hdul if h.name != missing])
        kept.writeto(path, overwrite=True, checksum=True)
    with pytest.raises(InputFileError, match=f"missing extension {missing}$"):
        read_maps(path)


def test_requested_line_absent_from_header(maps_file):
    path = maps_file(release="dr15")
    with pytest.raises(InputFileError, match="line\\(s\\) NI-5199 not in EMLINE_GFLUX"):
        read_maps(path, lines=["Ha-6564", "NI-5199"])


def test_shape_mismatch(tmp_path):
    path = tmp_path / "m.fits"
    arrays = fake_maps_arrays()
    write_maps(path, arrays, {"PLATEIFU": "1-2"})
    with fits.open(path) as hdul:
        hdul["EMLINE_GFLUX_IVAR"].data = hdul["EMLINE_GFLUX_IVAR"].data[:, :10, :]
        hdul.writeto(path, overwrite=True, checksum=True)
    with pytest.raises(InputFileError, match="shapes disagree"):
        read_maps(path)


def test_negative_ivar_in_unmasked_spaxel(maps_file):
    arrays = fake_maps_arrays()
    arrays["EMLINE_GFLUX_IVAR"][23, 6, 6] = -1.0
    with pytest.raises(InputFileError, match="1 unmasked spaxels have negative ivar \\(lines Ha"):
        read_maps(maps_file(maps=arrays), lines="strong")


def test_every_spaxel_masked(maps_file):
    arrays = fake_maps_arrays()
    arrays["EMLINE_GFLUX_MASK"][:] = 1 << 30
    with pytest.raises(InputFileError, match="every spaxel is masked"):
        read_maps(maps_file(maps=arrays))


@pytest.mark.parametrize("word", ["DAPQUAL", "DRP3QUAL"])
def test_critical_bit_rejected_unless_allowed(maps_file, word):
    path = maps_file(header={word: (1 << 30) | 2})
    with pytest.raises(InputFileError, match=f"{word} = 1073741826 has the CRITICAL bit"):
        read_maps(path)
    gal = read_maps(path, allow_critical=True)
    assert gal.meta[word.lower()] == (1 << 30) | 2


def test_truncated_plain_fits(maps_file):
    path = maps_file(name="m.fits")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 100])
    with pytest.raises(InputFileError, match="truncated FITS file|not a readable FITS file"):
        read_maps(path)


def test_ivar_channels_named_differently(tmp_path):
    path = tmp_path / "m.fits"
    write_maps(path, fake_maps_arrays(), {"PLATEIFU": "1-2"})
    with fits.open(path) as hdul:
        hdul["EMLINE_GFLUX_IVAR"].header["C01"] = "OII-3729"
        hdul["EMLINE_GFLUX_IVAR"].header["C02"] = "OII-3727"
        hdul.writeto(path, overwrite=True, checksum=True)
    with pytest.raises(InputFileError, match="channel names of EMLINE_GFLUX_IVAR differ"):
        read_maps(path)


@pytest.mark.parametrize("key", ["PLATEIFU", "DAPQUAL"])
def test_required_primary_keywords(tmp_path, key):
    path = tmp_path / "m.fits"
    write_maps(path, fake_maps_arrays(), {"PLATEIFU": "1-2"})
    with fits.open(path) as hdul:
        del hdul[0].header[key]
        hdul.writeto(path, overwrite=True, checksum=True)
    with pytest.raises(InputFileError, match=f"primary header has no {key} keyword"):
        read_maps(path)


def test_reads_only_the_hdus_it_needs(maps_file):
    """A full DR17 file cut right after EMLINE_GFLUX_MASK (HDU 32) still reads the same."""
    path = maps_file(name="full.fits", full=True)
    before = read_maps(path, lines="strong")
    with fits.open(path) as hdul:
        assert hdul.index_of("EMLINE_GFLUX_MASK") == 32
        cut = hdul.fileinfo(33)["hdrLoc"]
    path.write_bytes(path.read_bytes()[:cut])
    after = read_maps(path, lines="strong")
    np.testing.assert_array_equal(after.flux, before.flux)
    np.testing.assert_array_equal(after.mask, before.mask)


def test_header_value_of_the_wrong_type(maps_file):
    with pytest.raises(InputFileError, match="bad header value"):
        read_maps(maps_file(header={"DAPQUAL": "bad"}))


def test_fits_datasum_agrees_with_astropy():
    hdu = fits.ImageHDU(np.random.default_rng(0).normal(size=(3, 7, 11)).astype(">f4"))
    hdu.add_datasum()
    raw = hdu.data.tobytes()
    raw += b"\0" * (-len(raw) % 2880)
    assert fits_datasum(raw) == int(hdu.header["DATASUM"])


@pytest.mark.parametrize("name", ["m.fits", "m.fits.gz"])
def test_corrupt_data_is_caught_by_datasum(maps_file, name):
    plain = maps_file(name="plain.fits")
    with fits.open(plain) as hdul:
        offset = hdul["EMLINE_GFLUX"].fileinfo()["datLoc"] + 4 * 12 * 12 * 3 + 2
    data = bytearray(plain.read_bytes())
    data[offset] ^= 0x10  # one flipped bit in a flux value: still a readable FITS file
    path = plain.with_name(name)
    path.write_bytes(gzip.compress(bytes(data)) if name.endswith(".gz") else bytes(data))
    with pytest.raises(InputFileError, match="DATASUM mismatch in EMLINE_GFLUX") as err:
        read_maps(path)
    assert err.value.path == str(path)


@pytest.mark.parametrize(("ivar", "reason"), [
    (np.nan, "every unmasked spaxel has NaN or Inf flux or ivar in all requested lines"),
    (0.0, "every unmasked spaxel has ivar = 0 (no measurement) in all requested lines")])
def test_no_usable_spaxel_says_why(maps_file, ivar, reason):
    arrays = fake_maps_arrays()
    arrays["EMLINE_GFLUX_IVAR"][:] = ivar
    with pytest.raises(InputFileError, match=re.escape(reason)) as err:
        read_maps(maps_file(maps=arrays))
    assert err.value.kind == "no_data"


def test_duplicated_channel_name_is_refused(tmp_path):
    path = tmp_path / "m.fits"
    write_maps(path, fake_maps_arrays(), {"PLATEIFU": "8485-1901"})
    with fits.open(path) as hdul:
        hdul["EMLINE_GFLUX"].header["C23"] = "Ha-6564"
        hdul.writeto(path, overwrite=True, checksum=True)
    with pytest.raises(InputFileError, match="EMLINE_GFLUX names channel Ha-6564 twice "
                       "\\(C23 and C24\\)"):
        read_maps(path)


@pytest.mark.parametrize(("header", "reason"), [
    ({"PLATEIFU": "../../etc/x"}, "invalid PLATEIFU '../../etc/x'"),
    ({"PLATEIFU": "<script>"}, "invalid PLATEIFU '<script>'"),
    ({"MANGAID": "SDSS_x" * 4}, "invalid MANGAID"),
])
def test_identifiers_follow_manga_patterns_unless_generic(maps_file, header, reason):
    from linecube.io.checks import InputChecks

    path = maps_file(header=header)
    with pytest.raises(InputFileError, match=re.escape(reason)) as err:
        read_maps(path)
    assert err.value.kind == "identity"
    if "<" not in str(header) and "/" not in str(header):
        assert read_maps(path, checks=InputChecks(ids="generic"))


def test_file_name_and_header_must_agree(maps_file):
    path = maps_file(name="manga-7443-12703-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz")
    with pytest.raises(InputFileError, match="the file name says 7443-12703 but the header "
                       "PLATEIFU is 8485-1901"):
        read_maps(path)
