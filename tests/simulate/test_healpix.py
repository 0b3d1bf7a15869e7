import numpy as np

from linecube.simulate.healpix import ang2pix_nest

RA = [0.1, 45.0, 150.5, 210.3, 359.9, 120.0, 185.0, 10.0]
DEC = [0.1, 89.0, 30.2, -45.7, -89.5, 60.0, 10.0, -20.0]


def test_matches_reference_implementation():
    # Reference values from astropy-healpix 2.0.1 (healpy.ang2pix(nest=True, lonlat=True)).
    assert ang2pix_nest(64, RA, DEC).tolist() == [19456, 4095, 5287, 43311, 45056, 7704,
                                                  27749, 16788]
    assert ang2pix_nest(1, RA, DEC).tolist() == [4, 0, 1, 10, 11, 1, 6, 4]


def test_nested_hierarchy():
    rng = np.random.default_rng(0)
    ra = rng.uniform(0, 360, 1000)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 1000)))
    fine, coarse = ang2pix_nest(64, ra, dec), ang2pix_nest(16, ra, dec)
    assert np.array_equal(fine // 16, coarse)  # a nested parent holds its 4x4 children
    assert fine.min() >= 0 and fine.max() < 12 * 64**2
