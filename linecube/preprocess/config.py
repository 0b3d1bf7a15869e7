"""The preprocessing configuration: how files are read and how maps become tensors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from linecube.bits import bit_value
from linecube.config import StrictModel
from linecube.errors import ConfigError
from linecube.io.checks import InputChecks
from linecube.lines import resolve_lines

T = TypeVar("T")


def _checked(check: Callable[[T], object], value: T) -> T:
    """``value`` once ``check(value)`` passes; its ``ConfigError`` becomes the ``ValueError``
    pydantic reports as a validation error."""
    try:
        check(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return value


class PreprocessConfig(StrictModel):
    """Reading options and tensor options; stored with every store (``StoreMeta.preprocess``).

    Attributes:
        lines: preset name (``mantha19``, ``dr17-optical``, ``strong``) or list of DAP channel
            names; tensors hold them in wavelength order.
        extension: ``GFLUX`` (Gaussian-fit flux) or ``SFLUX`` (summed flux, can be negative).
        mask: ``donotuse`` (bit 30), ``strict`` (mask == 0) or a list of DAPPIXMASK bit names.
        allow_critical: keep files whose DAPQUAL/DRP3QUAL has the CRITICAL bit.
        nonfinite: NaN/Inf in an unmasked spaxel: ``mask`` it (counted) or ``reject`` the file.
        size: output maps are ``size`` x ``size``, centred on the IFU centre.
        pixel_scale: output spaxel size in arcsec; None keeps the native 0.5 arcsec sampling,
            other values resample (flux-conserving, inverse-variance propagated).
        min_coverage: when resampling, the fraction of an output spaxel's area that good input
            spaxels must cover for it to be good.
        norm_line: line whose flux sets the per-galaxy scale; None pools all lines.
        norm_percentile: the scale is this percentile of the good flux of ``norm_line``.
        stretch: ``asinh``, ``log`` or ``linear``, applied to flux / scale.
        softening: the stretch's softening ``a``: ``asinh(u / a) / asinh(1 / a)`` or
            ``log10(1 + u / a) / log10(1 + 1 / a)``; both map u = 1 (the scale) to 1.
        checks: limits on what a file may claim and the identifier rules
            (:class:`linecube.io.checks.InputChecks`); they decide which files are read, not
            how, so they are not part of a store's settings.
    """

    lines: str | list[str] = "mantha19"
    extension: Literal["GFLUX", "SFLUX"] = "GFLUX"
    mask: Literal["donotuse", "strict"] | list[str] = "donotuse"
    allow_critical: bool = False
    nonfinite: Literal["mask", "reject"] = "mask"
    size: int = Field(64, ge=8, le=512)
    pixel_scale: float | None = Field(None, gt=0)
    min_coverage: float = Field(0.5, gt=0, le=1)
    norm_line: str | None = None
    norm_percentile: float = Field(99.0, gt=0, le=100)
    stretch: Literal["asinh", "log", "linear"] = "asinh"
    softening: float = Field(0.01, gt=0)
    checks: InputChecks = Field(default_factory=InputChecks)

    @field_validator("lines")
    @classmethod
    def _known_lines(cls, value):
        return _checked(resolve_lines, value)

    @field_validator("mask")
    @classmethod
    def _known_bits(cls, value):
        return _checked(bit_value, value) if isinstance(value, list) else value

    @property
    def line_names(self) -> tuple[str, ...]:
        """The resolved channel names in wavelength order."""
        return resolve_lines(self.lines)

    @model_validator(mode="after")
    def _norm_line_in_lines(self):
        if self.norm_line is not None and self.norm_line not in self.line_names:
            raise ValueError(f"norm_line {self.norm_line!r} is not among the lines "
                             f"({', '.join(self.line_names)})")
        return self
