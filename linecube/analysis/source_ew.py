"""Equivalent widths read from each galaxy's source DAP MAPS file.

The store keeps line fluxes only; the WHAN classes of :func:`linecube.analysis.bpt.run_bpt`
also need EW(Ha), which is read here from the ``EMLINE_GEW`` maps of the MAPS file a galaxy
was ingested from (store catalogue column ``source``), in the central aperture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linecube.errors import InputFileError
from linecube.io.readers import MAPS, file_type
from linecube.progress import progress_bar
from linecube.store.store import Store


def aperture_ew(
    path: str | Path, center: tuple[float, float], radius_arcsec: float
) -> tuple[float, float]:
    """Mean EW(Ha) and EW([NII]6585) [Å] of the unmasked spaxels of a MAPS file's aperture.

    Args:
        path: the DAP MAPS file (``EMLINE_GFLUX``, ``EMLINE_GFLUX_MASK``, ``EMLINE_GEW``).
        center: (y, x) of the IFU centre in the file's pixels.
        radius_arcsec: aperture radius (0.5 arcsec spaxels).

    Returns:
        ``(ew_ha, ew_nii)``; NaN when no aperture spaxel is unmasked.
    """
    from linecube.analysis.physical import NATIVE_PIXEL_SCALE
    from linecube.bits import DAPPIXMASK
    from linecube.io.maps import channel_names, read_hdus

    hdus = read_hdus(path, {"EMLINE_GFLUX", "EMLINE_GFLUX_MASK", "EMLINE_GEW"})
    channels = channel_names(hdus["EMLINE_GEW"][0])
    ew = hdus["EMLINE_GEW"][1].astype(np.float64)
    mask = hdus["EMLINE_GFLUX_MASK"][1].astype(np.int64)
    yy, xx = np.mgrid[: ew.shape[1], : ew.shape[2]]
    radius = radius_arcsec / NATIVE_PIXEL_SCALE
    inside = (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2
    out = []
    for name in ("Ha-6564", "NII-6585"):
        if name not in channels:
            raise InputFileError(path, f"EMLINE_GEW has no {name} channel")
        i = channels[name]
        ok = inside & ((mask[i] >> DAPPIXMASK["DONOTUSE"]) & 1 == 0) & np.isfinite(ew[i])
        out.append(float(ew[i][ok].mean()) if ok.any() else np.nan)
    return out[0], out[1]


def source_ews(
    store: Store, radius_arcsec: float, progress: bool = False
) -> tuple[np.ndarray, list[str]]:
    """(N, 2) aperture EW(Ha), EW([NII]) of every galaxy from its source MAPS file.

    Returns:
        The EWs (NaN rows where the source could not be used) and the reasons, one per failure.
    """
    cat = store.catalogue
    ew = np.full((len(cat), 2), np.nan)
    problems: list[str] = []
    needed = {"source", "center_y", "center_x"}
    if not needed <= set(cat.columns):
        return ew, [f"the store catalogue lacks {sorted(needed - set(cat.columns))}"]
    for i, row in enumerate(
        progress_bar(len(cat), "whan", "galaxy", iterable=cat.itertuples(index=False),
                     disable=not progress)
    ):
        source = str(row.source)
        if file_type(source) is not MAPS:
            problems.append(f"{row.plateifu}: source {source} is not a MAPS file")
            continue
        if not Path(source).is_file():
            problems.append(f"{row.plateifu}: source {source} not found")
            continue
        try:
            ew[i] = aperture_ew(source, (row.center_y, row.center_x), radius_arcsec)
        except InputFileError as exc:
            problems.append(f"{row.plateifu}: {exc}")
    return ew, problems
