import numpy as np
import pytest
from analysis_fixtures import SF_RATIOS, make_store

from linecube.analysis.physical import physical_maps, pixel_scale


def test_physical_flux_and_error_round_trip(tmp_path):
    store = make_store(tmp_path / "s", n=3, ivar_physical=1e4)
    phys = physical_maps(store, 1, 3)
    assert phys["flux"].shape == (2, 7, 8, 8)
    v = phys["valid"]
    assert not v[:, :, 0, :].any() and v[:, :, 1:, 1:].all()
    # flux ratios survive the normalisation and stretch
    for g in range(2):
        ratio = phys["flux"][g, 4][v[g, 4]] / phys["flux"][g, 3][v[g, 3]]
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
        assert ratio[0] == pytest.approx(SF_RATIOS["NII-6585"], rel=0.5)
    # the error carried through the inverse stretch is the physical one (ivar 1e4 -> 0.01)
    np.testing.assert_allclose(phys["sigma"][v], 0.01, rtol=2e-3)
    assert pixel_scale(store) == 0.5
