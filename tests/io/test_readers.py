import numpy as np
import pytest

from linecube.errors import InputFileError
from linecube.io.maps import maps_lines, read_maps
from linecube.io.mmu import mmu_lines, write_mmu
from linecube.io.readers import MAPS, MMU, file_type, read_galaxies, reader_for


@pytest.mark.parametrize("name, expected", [
    ("a.fits", MAPS), ("a.fits.gz", MAPS), ("a.fit", MAPS), ("a.fit.gz", MAPS),
    ("A.FITS.GZ", MAPS), ("b.Fit", MAPS), ("c.hdf5", MMU), ("c.h5", MMU), ("C.HDF5", MMU),
    ("notes.txt", None), ("a.fits.bz2", None), ("fits", None), ("a.gz", None),
])
def test_file_type_by_name(name, expected):
    assert file_type(f"/data/{name}") is expected


def test_reader_for_an_unknown_type_names_the_file_and_the_accepted_types(tmp_path):
    path = tmp_path / "galaxy.txt"
    with pytest.raises(InputFileError) as err:
        reader_for(path)
    assert err.value.path == str(path)
    message = str(err.value)
    assert str(path) in message and "unknown file type" in message
    for suffix in (".fits", ".fits.gz", ".fit", ".fit.gz", ".hdf5", ".h5"):
        assert suffix in message
    with pytest.raises(InputFileError, match="unknown file type"):
        read_galaxies(path)


def test_read_galaxies_dispatches_on_the_name(maps_file, tmp_path):
    fits_path = maps_file(name="manga-8485-1901.FIT.GZ")
    gal, = read_galaxies(fits_path, lines="strong")
    ref = read_maps(maps_file(name="ref.fits.gz"), lines="strong")
    np.testing.assert_array_equal(gal.flux, ref.flux)
    h5 = tmp_path / "two.h5"
    other = read_maps(maps_file(name="o.fits", header={"PLATEIFU": "8485-1902"}, seed=1),
                      lines="dr17-optical")
    write_mmu(h5, [read_maps(fits_path, lines="dr17-optical"), other])
    assert [g.plateifu for g in read_galaxies(h5, lines="strong")] == ["8485-1901", "8485-1902"]


def test_lines_held_by_a_file(maps_file, tmp_path):
    path = maps_file(release="dr15")
    assert len(maps_lines(path)) == 22 and "Ha-6564" in maps_lines(path, "SFLUX")
    h5 = tmp_path / "a.hdf5"
    write_mmu(h5, [read_maps(path, lines=["Ha-6564", "Hb-4862", "NII-6585"])])
    assert mmu_lines(h5) == ["Hb-4862", "Ha-6564", "NII-6585"]  # wavelength order
    with pytest.raises(InputFileError, match=r"no group has emline_sflux_\* rows"):
        mmu_lines(h5, "SFLUX")
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(InputFileError, match="not a readable HDF5 file"):
        mmu_lines(junk)
