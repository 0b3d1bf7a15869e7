"""Physical line fluxes and their errors from the store's normalised, stretched maps."""

from __future__ import annotations

import numpy as np

from linecube.store.store import Store

NATIVE_PIXEL_SCALE = 0.5  # arcsec per MaNGA spaxel


def pixel_scale(store: Store) -> float:
    """Arcsec per pixel of the store's maps."""
    return float(store.meta.preprocess.get("pixel_scale") or NATIVE_PIXEL_SCALE)


def physical_maps(store: Store, start: int, stop: int) -> dict[str, np.ndarray]:
    """Physical flux, its 1-sigma error and validity of galaxies ``start:stop``.

    The error is the network-unit error 1/sqrt(ivar) carried through the inverse stretch by a
    central difference, ``|invert(x + s/2) - invert(x - s/2)|``, which is the linear error
    propagation the preprocessing applied in the other direction.

    Returns:
        ``flux``, ``sigma`` (B, L, H, W) float64 (1e-17 erg/s/cm^2/spaxel) and ``valid``
        (B, L, H, W) bool (weight > 0 and ivar > 0).
    """
    from linecube.preprocess import PreprocessConfig, invert

    cfg = PreprocessConfig.model_validate(store.meta.preprocess)
    data = store.read(slice(start, stop))
    scale = store.catalogue["scale"].to_numpy(dtype=np.float64)[start:stop, None, None, None]
    x = data["x"].astype(np.float64)
    valid = (data["weight"] > 0) & (data["ivar"] > 0)
    with np.errstate(divide="ignore"):
        half = np.where(valid, 0.5 / np.sqrt(np.where(valid, data["ivar"], 1.0)), 0.0)
    flux = invert(x, scale, cfg).astype(np.float64)
    sigma = np.abs(
        invert(x + half, scale, cfg).astype(np.float64)
        - invert(x - half, scale, cfg).astype(np.float64)
    )
    return {"flux": flux, "sigma": sigma, "valid": valid}
