"""Distances in a flat Lambda-CDM cosmology (H0 = 70 km/s/Mpc, Omega_m = 0.3), numpy only."""

from __future__ import annotations

import numpy as np

from linecube.lines import C_KMS

H0 = 70.0
OMEGA_M = 0.3
MPC_CM = 3.0856775814913673e24

_Z = np.linspace(0.0, 0.5, 5001)
_INV_E = 1.0 / np.sqrt(OMEGA_M * (1 + _Z) ** 3 + (1 - OMEGA_M))
_DC = np.concatenate([[0.0], np.cumsum(0.5 * (_INV_E[1:] + _INV_E[:-1]) * np.diff(_Z))])
_DC *= C_KMS / H0  # comoving distance [Mpc]


def comoving_distance(z: np.ndarray | float) -> np.ndarray:
    """Line-of-sight comoving distance [Mpc] for 0 <= z <= 0.5."""
    return np.interp(z, _Z, _DC)


def angular_diameter_distance(z: np.ndarray | float) -> np.ndarray:
    """Angular-diameter distance [Mpc]."""
    return comoving_distance(z) / (1 + np.asarray(z))


def luminosity_distance_cm(z: np.ndarray | float) -> np.ndarray:
    """Luminosity distance [cm]."""
    return comoving_distance(z) * (1 + np.asarray(z)) * MPC_CM


def kpc_per_arcsec(z: np.ndarray | float) -> np.ndarray:
    """Proper transverse scale [kpc/arcsec]."""
    return angular_diameter_distance(z) * 1e3 * np.pi / (180 * 3600)


def redshift_for_scale(scale_kpc_per_arcsec: float) -> float:
    """The redshift (<= 0.5) at which one arcsec spans ``scale`` kpc."""
    return float(np.interp(scale_kpc_per_arcsec, kpc_per_arcsec(_Z[1:]), _Z[1:]))
