"""Typed settings of the simulated survey (every key has a default; unknown keys are rejected)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from linecube.config import StrictModel

CLASSES = ("star_forming", "retired", "seyfert", "liner", "composite", "shock_merger",
           "blueberry")
# Bundles per plate in the MaNGA mix (Drory et al. 2015): 2x19, 4x37, 4x61, 2x91, 5x127 fibres.
MANGA_BUNDLES = {19: 2, 37: 4, 61: 4, 91: 2, 127: 5}


class ClassFractions(StrictModel):
    """Relative frequency of each ionisation class (normalised to sum 1).

    The defaults are roughly MaNGA-like: mostly star-forming and retired galaxies, a few per
    cent AGN, shocked mergers about 1.5 %, blueberries rare.
    """

    star_forming: float = Field(0.55, ge=0)
    retired: float = Field(0.33, ge=0)
    seyfert: float = Field(0.03, ge=0)
    liner: float = Field(0.03, ge=0)
    composite: float = Field(0.04, ge=0)
    shock_merger: float = Field(0.015, ge=0)
    blueberry: float = Field(0.005, ge=0)

    @model_validator(mode="after")
    def _positive_total(self):
        if sum(self.weights()) <= 0:
            raise ValueError("class fractions sum to zero")
        return self

    def weights(self) -> list[float]:
        """Fractions in the order of ``CLASSES``, normalised to sum 1."""
        raw = [getattr(self, name) for name in CLASSES]
        total = sum(raw)
        return [w / total for w in raw] if total > 0 else raw


class AgnCatalogueConfig(StrictModel):
    """Detection model of the AGN catalogue (MaNGA AGN VAC style, Comerford et al. 2020).

    Each simulated AGN is tested once per selection method; the probabilities below give the
    catalogue its incompleteness. ``false_positive_rate`` puts that fraction of non-AGN in the
    catalogue as radio "AGN" (star-formation-powered radio sources misclassified).
    """

    wise_l50: float = 41.0  # log L[OIII] (erg/s) at which half of the Seyferts are WISE-red
    wise_max: float = 0.7
    bat_l50: float = 41.4  # log L[OIII] at which half of the Seyferts are BAT detections
    bat_max: float = 0.5
    radio_seyfert: float = Field(0.15, ge=0, le=1)
    radio_liner: float = Field(0.35, ge=0, le=1)
    radio_composite: float = Field(0.10, ge=0, le=1)
    broad_seyfert: float = Field(0.15, ge=0, le=1)
    false_positive_rate: float = Field(0.002, ge=0, le=1)


class SimulationConfig(StrictModel):
    """Settings of ``simulate_survey`` (the seed and the number of galaxies are arguments)."""

    classes: ClassFractions = ClassFractions()
    composite_agn_fraction: float = Field(
        0.5, ge=0, le=1, description="fraction of composites whose nucleus is an AGN")
    seyfert_cone_fraction: float = Field(0.4, ge=0, le=1,
                                         description="Seyferts with extended ionisation cones")
    repeat_fraction: float = Field(0.03, ge=0, lt=1,
                                   description="observations that re-observe an earlier galaxy")
    secondary_fraction: float = Field(
        1 / 3, ge=0, le=1, description="galaxies whose IFU covers 2.5 Re (else 1.5 Re)")
    bundles: dict[int, int] = Field(default_factory=lambda: dict(MANGA_BUNDLES),
                                    description="IFU bundles per plate, by fibre count")
    psf_fwhm: float = Field(2.5, gt=0, description="median r-band PSF FWHM [arcsec]")
    noise_scale: float = Field(1.0, gt=0, description="multiplies every noise level")
    forestar_rate: float = Field(0.05, ge=0, le=1)
    fitfailed_rate: float = Field(0.002, ge=0, le=1, description="per-spaxel FITFAILED rate")
    dapdone_failure_rate: float = Field(0.004, ge=0, le=1,
                                        description="cubes the DAP faulted on (no MAPS file)")
    critical_rate: float = Field(0.005, ge=0, le=1,
                                 description="observations with DRP3QUAL CRITICAL")
    agn_catalogue: AgnCatalogueConfig = AgnCatalogueConfig()

    @field_validator("bundles")
    @classmethod
    def _known_bundles(cls, value: dict[int, int]) -> dict[int, int]:
        unknown = sorted(set(value) - set(MANGA_BUNDLES))
        if unknown:
            raise ValueError(f"unknown bundle sizes {unknown}; MaNGA has {list(MANGA_BUNDLES)}")
        if any(v < 0 for v in value.values()) or sum(value.values()) == 0:
            raise ValueError("bundle counts must be >= 0 with at least one bundle")
        return dict(sorted(value.items()))
