"""The in-memory galaxy every reader returns and the preprocessing consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Galaxy:
    """Emission-line maps of one observation (one PLATEIFU), in physical units.

    Attributes:
        plateifu: e.g. ``"8485-1901"``.
        mangaid: e.g. ``"1-209232"``.
        lines: channel names, in the order of the first array axis.
        flux: (L, H, W) float32, 1e-17 erg/s/cm^2/spaxel, native byte order.
        ivar: (L, H, W) float32 inverse variance of ``flux``.
        mask: (L, H, W) int32 ``MANGA_DAPPIXMASK`` bits as stored in the file.
        good: (L, H, W) bool, True where the spaxel is usable under the reader's mask policy
            (and ivar > 0, flux and ivar finite).
        center: (y, x) pixel coordinates of the IFU centre (0-based, may be half-integer).
        meta: scalar metadata: ra, dec, z, reff, psf_fwhm, ifudesign, daptype, dapqual,
            drp3qual, ebvgal, release, source (path), ...
    """

    plateifu: str
    mangaid: str
    lines: tuple[str, ...]
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    good: np.ndarray
    center: tuple[float, float]
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the maps."""
        return tuple(self.flux.shape[1:])
