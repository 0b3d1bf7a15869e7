import h5py
import numpy as np
import pytest

from linecube.errors import InputFileError
from linecube.io.maps import read_maps
from linecube.io.mmu import MMU_SIZE, read_mmu, write_mmu


def _galaxies(maps_file, n=2):
    return [read_maps(maps_file(name=f"m{i}.fits", header={"PLATEIFU": f"8485-190{i + 1}"},
                                seed=i), lines="dr17-optical") for i in range(n)]


def test_layout_matches_the_mmu_build_script(maps_file, tmp_path):
    gals = _galaxies(maps_file)
    path = tmp_path / "001-of-001.hdf5"
    write_mmu(path, gals)
    with h5py.File(path, "r") as hdf:
        assert dict(hdf.attrs) == {"project": "SDSS", "survey": "MaNGA", "release": "DR17"}
        grp = hdf["8485-1901"]
        assert grp["object_id"][()] == b"8485-1901" and grp["spaxel_size"][()] == 0.5
        maps = grp["maps"]
        assert set(maps.dtype.names) == {"group", "label", "array", "ivar", "mask",
                                         "array_units"}
        assert maps.dtype["array"].shape == (MMU_SIZE, MMU_SIZE)
        assert maps.dtype["mask"].base == np.float32
        row = maps[list(maps.fields("label")[:]).index(b"emline_gflux_ha_6564")]
        assert row["group"] == b"emline_gflux"
        assert (row["mask"][:42] == 2**30).all() and (row["array"][:42] == 0).all()


def test_round_trip_equals_the_maps_reading(maps_file, tmp_path):
    gals = _galaxies(maps_file)
    path = tmp_path / "t.h5"
    write_mmu(path, gals)
    back = list(read_mmu(path, lines="strong"))
    assert [g.plateifu for g in back] == ["8485-1901", "8485-1902"]
    for orig, got in zip(gals, back, strict=True):
        idx = [orig.lines.index(n) for n in got.lines]
        assert got.flux.shape == (7, 96, 96) and got.center == (47.5, 47.5)
        win = np.s_[:, 42:54, 42:54]
        np.testing.assert_array_equal(got.flux[win], orig.flux[idx])
        np.testing.assert_array_equal(got.good[win], orig.good[idx])
        assert got.good.sum() == orig.good[idx].sum()
        assert got.meta["z"] == pytest.approx(orig.meta["z"])


def test_bad_hdf5_inputs(maps_file, tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5" * 100)
    with pytest.raises(InputFileError, match="not a readable HDF5 file"):
        list(read_mmu(junk))
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w"):
        pass
    with pytest.raises(InputFileError, match="no observation groups"):
        list(read_mmu(empty))
    nomaps = tmp_path / "nomaps.h5"
    with h5py.File(nomaps, "w") as hdf:
        hdf.create_group("8485-1901").create_dataset("z", data=0.1)
    with pytest.raises(InputFileError, match="group 8485-1901: no 'maps' dataset"):
        list(read_mmu(nomaps))
    nocol = tmp_path / "nocol.h5"
    with h5py.File(nocol, "w") as hdf:
        rows = np.zeros(1, dtype=[("label", "S32"), ("array", "<f4", (4, 4))])
        hdf.create_group("8485-1901").create_dataset("maps", data=rows)
    with pytest.raises(InputFileError, match="lacks column\\(s\\) ivar, mask"):
        list(read_mmu(nocol))
    path = tmp_path / "ok.h5"
    write_mmu(path, _galaxies(maps_file, 1))
    with pytest.raises(InputFileError, match="line\\(s\\) OII-3727 not in 'maps'"):
        list(read_mmu(path, lines=["OII-3727", "Ha-6564"]))


def test_errors_list_records_bad_groups_and_continues(maps_file, tmp_path):
    gals = _galaxies(maps_file)
    gals[0].mask[:] = 1 << 30
    path = tmp_path / "t.h5"
    write_mmu(path, gals)
    errors = []
    got = list(read_mmu(path, lines="strong", errors=errors))
    assert [g.plateifu for g in got] == ["8485-1902"]
    assert errors == [(f"{path}#8485-1901", "every spaxel is masked in all requested lines",
                       "no_data")]


def test_float32_mask_keeps_donotuse(maps_file, tmp_path):
    """float32 cannot hold 2**30 + 3 exactly; DONOTUSE survives, low bits may not."""
    gals = _galaxies(maps_file, 1)
    path = tmp_path / "t.h5"
    write_mmu(path, gals)
    got = next(read_mmu(path, lines="strong", mask="donotuse"))
    assert ((got.mask[:, 42:54, 42:54] & (1 << 30)) != 0).sum() == (
        (gals[0].mask[[gals[0].lines.index(n) for n in got.lines]] & (1 << 30)) != 0).sum()
