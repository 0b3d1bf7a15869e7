"""HEALPix NESTED pixel index of sky positions (Górski et al. 2005), numpy only.

Used to place simulated observations in Multimodal Universe ``healpix=NNNN`` tiles (nside 64).
"""

from __future__ import annotations

import numpy as np


def _spread_bits(v: np.ndarray) -> np.ndarray:
    """Interleave zeros between the bits of ``v`` (x -> bits at even positions)."""
    v = v.astype(np.int64)
    out = np.zeros_like(v)
    for bit in range(30):
        out |= ((v >> bit) & 1) << (2 * bit)
    return out


def ang2pix_nest(nside: int, ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """NESTED pixel index of (RA, Dec) in degrees for a power-of-two ``nside``."""
    phi = np.radians(np.asarray(ra_deg, dtype=float)) % (2 * np.pi)
    z = np.sin(np.radians(np.asarray(dec_deg, dtype=float)))
    za = np.abs(z)
    tt = phi / (0.5 * np.pi)  # in [0, 4)
    face = np.zeros(np.shape(z), dtype=np.int64)
    ix = np.zeros(np.shape(z), dtype=np.int64)
    iy = np.zeros(np.shape(z), dtype=np.int64)

    eq = za <= 2.0 / 3.0
    # equatorial belt
    temp1 = nside * (0.5 + tt)
    temp2 = nside * (z * 0.75)
    jp = (temp1 - temp2).astype(np.int64)  # ascending edge line
    jm = (temp1 + temp2).astype(np.int64)  # descending edge line
    ifp, ifm = jp // nside, jm // nside
    f_eq = np.where(ifp == ifm, (ifp | 4), np.where(ifp < ifm, ifp, ifm + 8))
    ix_eq = jm & (nside - 1)
    iy_eq = nside - (jp & (nside - 1)) - 1
    # polar caps
    ntt = np.minimum(tt.astype(np.int64), 3)
    tp = tt - ntt
    tmp = nside * np.sqrt(3 * (1 - za))
    jp_c = np.minimum((tp * tmp).astype(np.int64), nside - 1)
    jm_c = np.minimum(((1.0 - tp) * tmp).astype(np.int64), nside - 1)
    north = z >= 0
    f_cap = np.where(north, ntt, ntt + 8)
    ix_cap = np.where(north, nside - jm_c - 1, jp_c)
    iy_cap = np.where(north, nside - jp_c - 1, jm_c)

    face = np.where(eq, f_eq, f_cap)
    ix = np.where(eq, ix_eq, ix_cap)
    iy = np.where(eq, iy_eq, iy_cap)
    return face * nside * nside + _spread_bits(ix) + (_spread_bits(iy) << 1)
