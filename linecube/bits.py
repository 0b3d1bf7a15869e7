"""MaNGA bitmask definitions (``MANGA_DAPPIXMASK``, ``MANGA_DAPQUAL``, ``MANGA_DRP3QUAL``)."""

from __future__ import annotations

import numpy as np

from linecube.errors import ConfigError

DAPPIXMASK: dict[str, int] = {
    "NOCOV": 0, "LOWCOV": 1, "DEADFIBER": 2, "FORESTAR": 3, "NOVALUE": 4, "UNRELIABLE": 5,
    "MATHERROR": 6, "FITFAILED": 7, "NEARBOUND": 8, "NOCORRECTION": 9, "MULTICOMP": 10,
    "DONOTUSE": 30,
}
# Bits the DAP folds into DONOTUSE (``_consolidate_donotuse``).
DONOTUSE_SOURCES = ("NOCOV", "LOWCOV", "DEADFIBER", "FORESTAR", "NOVALUE", "MATHERROR",
                    "FITFAILED", "NEARBOUND")

DAPQUAL: dict[str, int] = {
    "FORESTAR": 0, "BADZ": 1, "LINELESS": 2, "PPXFFAIL": 3, "SINGLEBIN": 4, "BADGEOM": 5,
    "DRPCRIT": 28, "DAPCRIT": 29, "CRITICAL": 30,
}
DRP3QUAL: dict[str, int] = {
    "BADDEPTH": 1, "SKYSUBBAD": 2, "HIGHSCAT": 3, "BADASTROM": 4, "VARIABLELSF": 5,
    "BADOMEGA": 6, "BADSET": 7, "BADFLUX": 8, "BADPSF": 9, "MANYDEAD": 10, "BLOWTORCH": 12,
    "SEVEREBT": 13, "UNUSUAL": 14, "CRITICAL": 30,
}
CRITICAL_BIT = 30


def bit_value(names: list[str] | tuple[str, ...], table: dict[str, int] = DAPPIXMASK) -> int:
    """OR of ``1 << bit`` for each named bit; unknown names raise with the valid names listed."""
    value = 0
    for name in names:
        if name not in table:
            raise ConfigError(f"unknown mask bit {name!r}; valid bits are {', '.join(table)}")
        value |= 1 << table[name]
    return value


def bit_names(value: int, table: dict[str, int] = DAPPIXMASK) -> list[str]:
    """Names of the bits set in ``value``."""
    return [name for name, bit in table.items() if int(value) & (1 << bit)]


def consolidate_donotuse(mask: np.ndarray) -> np.ndarray:
    """Set DONOTUSE wherever any of its source bits is set, as the DAP does."""
    sources = bit_value(list(DONOTUSE_SOURCES))
    out = mask.astype(np.int32, copy=True)
    out[(out & sources) != 0] |= 1 << DAPPIXMASK["DONOTUSE"]
    return out
