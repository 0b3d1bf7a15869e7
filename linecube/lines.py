"""The DAP Gaussian emission-line catalogue (DR17 ``ELPMPL11``, DR15 ``ELPMILES``) and line presets.

Channel names are exactly the MAPS header names (``C01``… values, stripped). Wavelengths are
vacuum, in Å, from the DAP parameter files (see ``manga-maps-format.md`` §4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from linecube.errors import ConfigError

# Physical constants used with the lines.
C_KMS = 299_792.458  # speed of light [km/s]
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))  # Gaussian sigma per unit FWHM
LOG_HA_LUMINOSITY_PER_SFR = 41.27  # log10 L(Hα) [erg/s] per 1 M☉/yr (Kennicutt & Evans 2012)


@dataclass(frozen=True)
class Line:
    """One DAP emission-line channel."""

    name: str  # header name, e.g. "Ha-6564"
    wavelength: float  # vacuum rest wavelength [Å]
    tied_to: str | None = None  # flux fixed at ``tie_ratio`` × this line's flux by the DAP fit
    tie_ratio: float | None = None


# DR17 / MPL-11 (ELPMPL11): 35 channels in header order C01..C35.
DR17_LINES: tuple[Line, ...] = (
    Line("OII-3727", 3727.092),
    Line("OII-3729", 3729.875),
    Line("H12-3751", 3751.2174),
    Line("H11-3771", 3771.7012),
    Line("Hthe-3798", 3798.9757),
    Line("Heta-3836", 3836.4720),
    Line("NeIII-3869", 3869.86),
    Line("HeI-3889", 3889.749),
    Line("Hzet-3890", 3890.1506),
    Line("NeIII-3968", 3968.59, "NeIII-3869", 0.30),
    Line("Heps-3971", 3971.1951),
    Line("Hdel-4102", 4102.8922),
    Line("Hgam-4341", 4341.6837),
    Line("HeII-4687", 4687.015),
    Line("Hb-4862", 4862.6830),
    Line("OIII-4960", 4960.295, "OIII-5008", 0.35),
    Line("OIII-5008", 5008.240),
    Line("NI-5199", 5199.349),
    Line("NI-5201", 5201.705),
    Line("HeI-5877", 5877.252),
    Line("OI-6302", 6302.046),
    Line("OI-6365", 6365.536, "OI-6302", 0.32),
    Line("NII-6549", 6549.86, "NII-6585", 0.34),
    Line("Ha-6564", 6564.608),
    Line("NII-6585", 6585.27),
    Line("SII-6718", 6718.295),
    Line("SII-6732", 6732.674),
    Line("HeI-7067", 7067.657),
    Line("ArIII-7137", 7137.76),
    Line("ArIII-7753", 7753.24),
    Line("Peta-9017", 9017.384),
    Line("SIII-9071", 9071.1, "SIII-9533", 0.41),
    Line("Pzet-9231", 9231.546),
    Line("SIII-9533", 9533.2),
    Line("Peps-9548", 9548.588),
)

_DR17_BY_NAME = {line.name: line for line in DR17_LINES}
# Channels whose flux the DR17 DAP fixes at a ratio to a partner: they repeat that partner.
TIED_LINES = frozenset(line.name for line in DR17_LINES if line.tied_to)

# DR15 / MPL-7 (ELPMILES): 22 channels in header order. The DR15 fit fixed [OIII], [OI] and
# [NII] doublet ratios at 0.340, 0.328 and 0.327 (medians measured in a real DR15 file);
# [NeIII] 3968 was free. Hα was 6564.632 Å before MPL-11.
_DR15_TIES = {"OIII-4960": ("OIII-5008", 0.340), "OI-6365": ("OI-6302", 0.328),
              "NII-6549": ("NII-6585", 0.327)}
_DR15_NAMES = (
    "OII-3727", "OII-3729", "Hthe-3798", "Heta-3836", "NeIII-3869", "Hzet-3890", "NeIII-3968",
    "Heps-3971", "Hdel-4102", "Hgam-4341", "HeII-4687", "Hb-4862", "OIII-4960", "OIII-5008",
    "HeI-5877", "OI-6302", "OI-6365", "NII-6549", "Ha-6564", "NII-6585", "SII-6718", "SII-6732",
)
DR15_LINES: tuple[Line, ...] = tuple(
    Line(
        name,
        6564.632 if name == "Ha-6564" else _DR17_BY_NAME[name].wavelength,
        *_DR15_TIES.get(name, (None, None)),
    )
    for name in _DR15_NAMES
)

RELEASE_LINES: dict[str, tuple[Line, ...]] = {"dr17": DR17_LINES, "dr15": DR15_LINES}

PRESETS: dict[str, tuple[str, ...]] = {
    # The 19 lines of Mantha et al. (2026): the DR15 list within 3800-8000 Å (format doc §4.1 A).
    "mantha19": tuple(n for n in _DR15_NAMES if 3800 <= _DR17_BY_NAME[n].wavelength <= 8000),
    # All 25 DR17 channels with 3800 <= λ <= 8000 Å.
    "dr17-optical": tuple(ln.name for ln in DR17_LINES if 3800 <= ln.wavelength <= 8000),
    "strong": ("Hb-4862", "OIII-5008", "OI-6302", "Ha-6564", "NII-6585", "SII-6718", "SII-6732"),
}
DEFAULT_PRESET = "mantha19"


def line(name: str) -> Line:
    """The DR17 catalogue entry for a channel name (DR15 names are a subset)."""
    try:
        return _DR17_BY_NAME[name]
    except KeyError:
        raise ConfigError(_unknown(name)) from None


def _unknown(name: str) -> str:
    valid = ", ".join(ln.name for ln in DR17_LINES)
    return f"unknown emission line {name!r}; valid DAP channel names are: {valid}"


def resolve_lines(spec: str | list[str] | tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Turn a preset name or a list of channel names into names sorted by wavelength.

    Wavelength order is the sequence order of the ConvLSTM. Unknown names raise a
    ConfigError listing the valid ones; duplicates are rejected.
    """
    if spec is None:
        spec = DEFAULT_PRESET
    if isinstance(spec, str):
        if spec in PRESETS:
            names = PRESETS[spec]
        elif spec in _DR17_BY_NAME:
            names = (spec,)
        else:
            raise ConfigError(
                f"unknown line preset {spec!r}; presets are {', '.join(PRESETS)}, "
                "or give a list of DAP channel names"
            )
    else:
        names = tuple(spec)
    if not names:
        raise ConfigError("the line list is empty")
    for name in names:
        line(name)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"line list repeats {', '.join(dupes)}")
    return tuple(sorted(names, key=lambda n: _DR17_BY_NAME[n].wavelength))


def wavelengths(names: tuple[str, ...] | list[str]) -> list[float]:
    """Vacuum rest wavelengths [Å] of ``names``."""
    return [line(n).wavelength for n in names]
