"""Demarcation lines of the BPT diagrams, shared by the classifier and the simulator.

y = log10([OIII]5008/Hβ) against x = log10([NII]6585/Hα), x_S = log10(([SII]6718 + 6732)/Hα)
or x_O = log10([OI]6302/Hα); coefficients as in Marvin's ``bpt.py``. Each function takes and
returns arrays (or floats) of the same shape.
"""

from __future__ import annotations


def kauffmann03(x):
    """Kauffmann et al. (2003) SF / composite line in the [NII] diagram (x < 0.05)."""
    return 0.61 / (x - 0.05) + 1.30


def kewley01_nii(x):
    """Kewley et al. (2001) maximum-starburst line, [NII] diagram (x < 0.47)."""
    return 0.61 / (x - 0.47) + 1.19


def kewley01_sii(x):
    """Kewley et al. (2001) maximum-starburst line, [SII] diagram (x < 0.32)."""
    return 0.72 / (x - 0.32) + 1.30


def kewley01_oi(x):
    """Kewley et al. (2001) maximum-starburst line, [OI] diagram (x < -0.59)."""
    return 0.73 / (x + 0.59) + 1.33


def kewley06_sii(x):
    """Kewley et al. (2006) Seyfert / LINER line, [SII] diagram (above = Seyfert)."""
    return 1.89 * x + 0.76


def kewley06_oi(x):
    """Kewley et al. (2006) Seyfert / LINER line, [OI] diagram (above = Seyfert)."""
    return 1.18 * x + 1.30


def schawinski07(x):
    """Schawinski et al. (2007) Seyfert / LINER line (above: Seyfert)."""
    return 1.05 * x + 0.45
