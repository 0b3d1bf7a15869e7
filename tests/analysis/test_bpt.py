import numpy as np
import pandas as pd
import pytest
import zarr

from linecube.analysis import bpt
from linecube.analysis.bpt import (
    AMBIGUOUS,
    COMPOSITE,
    INVALID,
    LINER,
    NO_DATA,
    SEYFERT,
    SF,
    BptConfig,
    classify_fluxes,
    classify_ratios,
    classify_whan,
    run_bpt,
    whan_names,
)
from linecube.errors import CompatibilityError
from linecube.store import Store, StoreMeta

# (curve, x, asymptote) with y of the curve at x computed by hand.
CURVES = [
    (bpt.kauffmann03, -0.5, 0.05, 0.61 / -0.55 + 1.30),  # 0.1909
    (bpt.kewley01_nii, -0.5, 0.47, 0.61 / -0.97 + 1.19),  # 0.5611
    (bpt.kewley01_sii, -0.5, 0.32, 0.72 / -0.82 + 1.30),  # 0.4220
    (bpt.kewley01_oi, -1.5, -0.59, 0.73 / -0.91 + 1.33),  # 0.5278
]


@pytest.mark.parametrize("curve, x, asymptote, y", CURVES)
def test_each_side_of_every_maximum_starburst_line(curve, x, asymptote, y):
    assert curve(x) == pytest.approx(y)
    assert not bpt._above(curve, np.array(x), np.array(y - 0.05), asymptote)
    assert bpt._above(curve, np.array(x), np.array(y + 0.05), asymptote)
    # right of the asymptote every point is on the AGN side, even far below
    assert bpt._above(curve, np.array(asymptote + 0.01), np.array(-3.0), asymptote)


def test_seyfert_liner_lines():
    assert bpt.kewley06_sii(-0.5) == pytest.approx(-0.185)
    assert bpt.kewley06_oi(-1.5) == pytest.approx(-0.47)


@pytest.mark.parametrize(
    "n2, s2, o1, o3, expected",
    [
        (-0.5, -0.5, -1.5, 0.0, SF),  # below Kauffmann, below both Kewley 2001
        (-0.5, -0.5, -1.5, 0.3, COMPOSITE),  # between Kauffmann (0.19) and Kewley (0.56)
        (0.0, 0.0, -0.5, 1.0, SEYFERT),  # above Kewley 2006 in [SII] (0.76) and [OI] (0.71)
        (0.2, 0.1, -0.3, 0.3, LINER),  # below Kewley 2006 in [SII] (0.95) and [OI] (0.95)
        (0.2, -0.2, -0.3, 0.8, AMBIGUOUS),  # Seyfert in [SII] (0.38) but LINER in [OI] (0.95)
        (-0.5, 0.0, -1.5, 0.5, AMBIGUOUS),  # composite in [NII] but AGN in [SII]
        (np.nan, -0.5, -1.5, 0.0, INVALID),
    ],
)
def test_classify_ratios(n2, s2, o1, o3, expected):
    assert (
        classify_ratios(np.array([n2]), np.array([s2]), np.array([o1]), np.array([o3]))[0]
        == expected
    )


def _fluxes(n2, sii_each, o1, o3):
    return {
        "Ha-6564": 1.0,
        "Hb-4862": 1.0,
        "NII-6585": 10**n2,
        "SII-6718": sii_each,
        "SII-6732": sii_each,
        "OI-6302": 10**o1,
        "OIII-5008": 10**o3,
    }


def test_sii_is_the_sum_of_both_lines():
    # Each [SII] line alone: log = -0.50 (below Kewley 2001 at y = 0.3 -> composite);
    # their sum: log = -0.20 (above it -> not composite).
    flux = {k: np.array([v]) for k, v in _fluxes(-0.5, 0.1, -1.5, 0.3).items()}
    flux["SII-6718"] = flux["SII-6732"] = np.array([10**-0.2 / 2])
    snr = {k: np.array([10.0]) for k in flux}
    assert classify_fluxes(flux, snr)[0] == AMBIGUOUS
    flux["SII-6718"] = flux["SII-6732"] = np.array([10**-0.6 / 2])
    assert classify_fluxes(flux, snr)[0] == COMPOSITE


def test_sn_threshold_and_nonpositive_flux():
    flux = {k: np.array([v, v, v]) for k, v in _fluxes(-0.5, 0.1, -1.5, 0.0).items()}
    snr = {k: np.array([5.0, 5.0, 5.0]) for k in flux}
    snr["OI-6302"] = np.array([5.0, 2.9, 5.0])
    flux["Hb-4862"] = np.array([1.0, 1.0, 0.0])
    assert list(classify_fluxes(flux, snr, sn_min=3)) == [SF, INVALID, INVALID]
    assert list(classify_fluxes(flux, snr, sn_min=2)) == [SF, SF, INVALID]


def test_whan():
    codes = classify_whan(
        np.array([-0.6, -0.2, -0.2, -0.6, 0.0, np.nan]),
        np.array([10, 10, 4, 2, 0.3, 10]),
        np.array([5, 5, 5, 5, 0.2, 5]),
    )
    assert [bpt.WHAN_NAMES[c] for c in codes] == [
        "SF",
        "strong_AGN",
        "weak_AGN",
        "retired",
        "passive",
        "invalid",
    ]


def test_whan_names_from_aperture_fluxes():
    totals = np.ones((3, 7))
    n2, ha = bpt.BPT_LINES.index("NII-6585"), bpt.BPT_LINES.index("Ha-6564")
    totals[:, ha] = 10.0
    totals[:, n2] = [1.0, 10.0, 0.0]  # log [NII]/Ha = -1, 0, -inf (invalid)
    ew = np.array([[10.0, 5.0], [10.0, 5.0], [10.0, 5.0]])
    assert list(whan_names(totals, ew)) == ["SF", "strong_AGN", "invalid"]
    ew[0, 0] = np.nan  # the source MAPS file could not be read
    assert whan_names(totals, ew)[0] == "unavailable"


def test_run_bpt_maps_and_classes(store, tmp_path):
    cat = run_bpt(tmp_path / "a", store, BptConfig(aperture_arcsec=1.0), progress=False)
    assert cat.loc[0, "bpt_class"] == "Seyfert"
    assert (cat.loc[1:, "bpt_class"] == "SF").all()
    assert (cat["whan_class"] == "unavailable").all()
    maps = zarr.open_group(tmp_path / "a" / "bpt_maps.zarr", mode="r")["bpt"][:]
    assert maps.shape == (len(store), 8, 8) and maps.dtype == np.int8
    assert (maps[:, 0, :] == NO_DATA).all()  # the masked edge row
    assert (maps[0, 4, 4] == SEYFERT) and (maps[1, 4, 4] == SF)
    # a strict S/N threshold makes the faint outskirts invalid but keeps the bright centre
    cat = run_bpt(tmp_path / "a", store, BptConfig(sn_min=50), progress=False)
    maps = zarr.open_group(tmp_path / "a" / "bpt_maps.zarr", mode="r")["bpt"][:]
    assert (maps[1, 1, 1] == INVALID) and (maps[1, 4, 4] == SF)


def test_run_bpt_needs_the_bpt_lines(tmp_path):
    meta = StoreMeta(lines=["Hb-4862", "Ha-6564"], size=4, preprocess={})
    s = Store.create(tmp_path / "s", meta)
    zero = np.zeros((1, 2, 4, 4), "f4")
    s.append({"x": zero, "weight": zero, "ivar": zero}, [{"plateifu": "1-1", "mangaid": "1"}])
    with pytest.raises(CompatibilityError, match="lacks OIII-5008, OI-6302, NII-6585"):
        run_bpt(tmp_path / "a", tmp_path / "s", progress=False)


def test_aperture_ew_from_a_maps_file(tmp_path):
    from linecube.analysis.source_ew import aperture_ew
    from linecube.bits import DAPPIXMASK
    from linecube.io.maps_writer import write_maps
    from linecube.lines import DR17_LINES

    names = [ln.name for ln in DR17_LINES]
    ew = np.zeros((35, 9, 9), "f4")
    ew[names.index("Ha-6564")] = 2.0
    ew[names.index("Ha-6564"), 4, 4] = 20.0  # the centre
    ew[names.index("NII-6585")] = 1.0
    mask = np.zeros((35, 9, 9), "i4")
    mask[:, 4, 5] = 1 << DAPPIXMASK["DONOTUSE"]  # excluded from the aperture
    path = tmp_path / "manga-1-1-MAPS-HYB10-MILESHC-MASTARSSP.fits"
    write_maps(
        path, {"EMLINE_GEW": ew, "EMLINE_GFLUX_MASK": mask}, {"PLATEIFU": "1-1", "MANGAID": "1-1"}
    )
    # radius 0.5" = 1 pixel: centre + 4 neighbours, one of them masked -> (20 + 3 * 2) / 4
    assert aperture_ew(path, (4.0, 4.0), 0.5) == pytest.approx((6.5, 1.0))
    assert aperture_ew(path, (4.0, 4.0), 0.1) == pytest.approx((20.0, 1.0))

    from types import SimpleNamespace

    from linecube.analysis.source_ew import source_ews

    cat = pd.DataFrame(
        {
            "plateifu": ["1-1", "1-2", "1-3"],
            "source": [str(path), str(tmp_path / "gone.fits"), "x.hdf5"],
            "center_y": [4.0] * 3,
            "center_x": [4.0] * 3,
        }
    )
    ews, problems = source_ews(SimpleNamespace(catalogue=cat), 0.1)
    np.testing.assert_allclose(ews[0], [20.0, 1.0])
    assert np.isnan(ews[1:]).all() and len(problems) == 2
    assert "1-3: source x.hdf5 is not a MAPS file" in problems[1]
