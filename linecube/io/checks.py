"""What an input file may claim and which identifiers it may carry (``PreprocessConfig.checks``).

The defaults are the limits of a MaNGA DAP product (``docs/data.md``; format reference §1, §3,
§6): DR17 MAPS files have 64 HDUs, at most 46 channels per extension (SPECINDEX; 35 emission
lines) and maps of at most 74x74 spaxels (127-fibre IFUs). A header that claims more is refused
before anything is allocated. Raise them for other surveys.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field

from linecube.config import StrictModel
from linecube.errors import InputFileError

# MaNGA identifiers: PLATEIFU is plate-ifudesign (e.g. 8485-1901, 10001-12701); MANGAID is
# catalogue-number (e.g. 1-596678, 12-193481).
PLATEIFU_PATTERN = re.compile(r"^[1-9]\d{0,5}-(19|37|61|91|127)\d{2}$")
MANGAID_PATTERN = re.compile(r"^(\d{1,2}-\d{1,10})?$")  # empty: not recorded
# Other surveys (ids="generic"): safe in file names, HTML and shells; up to 64 characters.
GENERIC_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
# A MaNGA file name: manga-PLATE-IFUDESIGN-MAPS-... (the DAP's naming, format reference §1).
_FILE_NAME = re.compile(r"^manga-(\d+-\d+)-")


class InputChecks(StrictModel):
    """Limits on what a file may claim, and the identifier rules.

    Attributes:
        max_hdus: HDUs a FITS file may have (DR17 MAPS: 64).
        max_channels: channels of one extension (DR17: 46 SPECINDEX, 35 emission lines).
        max_map_size: spaxels along either side of a map (DR17: at most 74).
        min_map_size: smallest side of a map accepted (DR17: at least 32; smaller is degenerate).
        max_read_mb: decompressed megabytes read from one file at most (a full 74x74 DR17
            MAPS file holds 36 MB, and reading stops after the extensions needed).
        ids: ``manga`` checks PLATEIFU and MANGAID against MaNGA's patterns and a
            ``manga-PLATE-IFU-*`` file name against the header; ``generic`` (other surveys)
            accepts identifiers of letters, digits and ``_ . + -`` up to 64 characters.
    """

    max_hdus: int = Field(64, ge=1)
    max_channels: int = Field(64, ge=1)
    max_map_size: int = Field(128, ge=1)
    min_map_size: int = Field(8, ge=1)
    max_read_mb: float = Field(256.0, gt=0)
    ids: Literal["manga", "generic"] = "manga"

    @property
    def max_hdu_bytes(self) -> int:
        """The largest data unit a file may claim: every channel at 8 bytes per value."""
        return self.max_channels * self.max_map_size**2 * 8


def check_ids(path: str | Path, plateifu: str, mangaid: str, checks: InputChecks) -> None:
    """Raise ``InputFileError`` (kind ``identity``) for an identifier the rules refuse."""
    hint = "; set checks.ids='generic' for other surveys" if checks.ids == "manga" else ""
    if checks.ids == "manga":
        rules = (("PLATEIFU", plateifu, PLATEIFU_PATTERN, "PLATE-IFUDESIGN such as 8485-1901"),
                 ("MANGAID", mangaid, MANGAID_PATTERN, "N-NNNNNN such as 1-596678"))
    else:
        generic = "letters, digits and _ . + - (up to 64 characters)"
        rules = (("PLATEIFU", plateifu, GENERIC_PATTERN, generic),
                 ("MANGAID", mangaid or "-", re.compile(r"^-$|" + GENERIC_PATTERN.pattern),
                  generic))
    for key, value, pattern, expected in rules:
        if not pattern.match(value):
            raise InputFileError(path, f"invalid {key} {value[:80]!r} (expected {expected}"
                                       f"{hint})", "identity")
    named = file_name_plateifu(path)
    if checks.ids == "manga" and named is not None and named != plateifu:
        raise InputFileError(path, f"the file name says {named} but the header PLATEIFU is "
                                   f"{plateifu}", "identity")


def file_name_plateifu(path: str | Path) -> str | None:
    """The PLATEIFU in a MaNGA file name (``manga-8485-1901-MAPS-...``), or None."""
    match = _FILE_NAME.match(Path(path).name)
    return match.group(1) if match else None
