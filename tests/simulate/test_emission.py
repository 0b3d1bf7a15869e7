import numpy as np
import pytest

from linecube.lines import DR17_LINES
from linecube.simulate import emission
from linecube.simulate.emission import IDX


def test_attenuation_curve_values():
    # Cardelli et al. (1989) with O'Donnell (1994): k(V) = R_V, Hβ more attenuated than Hα.
    k = emission.k_lambda(np.array([5494.5, 4862.68, 6564.61]))
    assert k[0] == pytest.approx(3.1, abs=0.02)
    assert k[1] == pytest.approx(3.66, abs=0.05)
    assert k[2] == pytest.approx(2.52, abs=0.05)


def test_case_b_and_dust_round_trip():
    ratios = emission.line_ratios(emission.star_forming(8.5))
    assert ratios[IDX["Ha-6564"]] / ratios[IDX["Hb-4862"]] == pytest.approx(2.86)
    assert ratios[IDX["Hgam-4341"]] == pytest.approx(0.468)
    ebv = np.array([0.0, 0.1, 0.4])
    att = emission.attenuation(ebv)
    decrement = 2.86 * att[IDX["Ha-6564"]] / att[IDX["Hb-4862"]]
    assert np.all(decrement >= 2.86)
    np.testing.assert_allclose(emission.ebv_from_decrement(decrement), ebv, atol=1e-12)


def test_density_doublets_within_physical_range():
    ne = np.array([1.0, 100.0, 1e3, 1e4, 1e5])
    sii = emission.sii_ratio(ne)
    oii = emission.oii_ratio(ne)
    assert sii[0] == pytest.approx(1.45, abs=0.01) and sii[-1] == pytest.approx(0.44, abs=0.01)
    assert np.all(np.diff(sii) < 0) and np.all(np.diff(oii) < 0)
    state = dict(emission.template("seyfert", np.random.default_rng(0)))
    r = emission.line_ratios(state)
    assert 0.44 <= r[IDX["SII-6718"]] / r[IDX["SII-6732"]] <= 1.45


@pytest.mark.parametrize("kind", ["lier", "dig", "seyfert", "liner", "composite", "shock",
                                  "blueberry"])
def test_dap_ties_exact_in_float32(kind):
    r = emission.line_ratios(emission.template(kind, np.random.default_rng(1)))
    f32 = emission.apply_ties(r.astype(np.float32))
    for ln in DR17_LINES:
        if ln.tied_to:
            assert f32[IDX[ln.name]] == np.float32(ln.tie_ratio) * f32[IDX[ln.tied_to]]
    assert np.all(r >= 0)


def test_star_forming_sequence_below_kauffmann():
    oh = np.linspace(7.9, 8.65, 20)
    s = emission.star_forming(oh)
    kauffmann = 0.61 / (s["n2"] - 0.05) + 1.30
    assert np.all(s["o3"] < kauffmann)
    assert np.all(np.diff(s["n2"]) > 0)  # metal-rich -> higher [NII]/Hα


def test_unknown_template():
    with pytest.raises(ValueError, match="unknown template"):
        emission.template("quasar", np.random.default_rng(0))
