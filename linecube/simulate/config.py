"""Typed settings of the simulated survey (every key has a default; unknown keys are rejected)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from linecube.config import StrictModel

# Ionisation classes drawn with ``classes`` (MaNGA-like fractions).
BASE_CLASSES = ("star_forming", "retired", "seyfert", "liner", "composite", "shock_merger",
                "blueberry")
# Rare spatial structures whose integrated line ratios stay those of their normal host.
RARE_KINDS = ("sf_ring", "nuclear_ring", "stripped_tail", "double_nucleus", "dust_lane",
              "agn_cloud")
# Hosts (base classes) each rare kind is drawn on.
RARE_HOSTS = {"sf_ring": ("star_forming",), "nuclear_ring": ("star_forming",),
              "stripped_tail": ("star_forming",), "double_nucleus": ("star_forming", "retired"),
              "dust_lane": ("star_forming",), "agn_cloud": ("star_forming",)}
CLASSES = BASE_CLASSES + RARE_KINDS
NORMAL_CLASSES = ("star_forming", "retired")
# Bundles per plate in the MaNGA mix (Drory et al. 2015): 2x19, 4x37, 4x61, 2x91, 5x127 fibres.
MANGA_BUNDLES = {19: 2, 37: 4, 61: 4, 91: 2, 127: 5}
RARE_KIND_MAX = 0.2  # largest survey fraction one rare kind may take


def _fraction(default: float, most: float = 1, description: str | None = None):
    """A field holding a fraction or probability in [0, ``most``]."""
    return Field(default, ge=0, le=most, description=description)


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
        """Fractions in the order of ``BASE_CLASSES``, normalised to sum 1."""
        raw = [getattr(self, name) for name in BASE_CLASSES]
        total = sum(raw)
        return [w / total for w in raw] if total > 0 else raw


class RareKindFractions(StrictModel):
    """Fraction of the whole survey given each rare spatial kind (drawn on its hosts).

    A kind's galaxies come out of its host classes (``RARE_HOSTS``), so the AGN, shock and
    blueberry fractions of ``classes`` stay as set; star-forming and retired galaxies give up
    what the rare kinds take.
    """

    sf_ring: float = _fraction(0.015, most=RARE_KIND_MAX)
    nuclear_ring: float = _fraction(0.015, most=RARE_KIND_MAX)
    stripped_tail: float = _fraction(0.01, most=RARE_KIND_MAX)
    double_nucleus: float = _fraction(0.01, most=RARE_KIND_MAX)
    dust_lane: float = _fraction(0.015, most=RARE_KIND_MAX)
    agn_cloud: float = _fraction(0.01, most=RARE_KIND_MAX)


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
    radio_seyfert: float = _fraction(0.15)
    radio_liner: float = _fraction(0.35)
    radio_composite: float = _fraction(0.10)
    broad_seyfert: float = _fraction(0.15)
    false_positive_rate: float = _fraction(0.002)


class SimulationConfig(StrictModel):
    """Settings of ``simulate_survey`` (the seed and the number of galaxies are arguments)."""

    classes: ClassFractions = ClassFractions()
    composite_agn_fraction: float = _fraction(
        0.5, description="fraction of composites whose nucleus is an AGN")
    rare_kinds: RareKindFractions = RareKindFractions()
    min_per_kind: int = Field(
        1, ge=0, le=10, description="the first eligible galaxies of the survey are given each "
        "rare kind in turn, so that every survey this large holds at least this many of each")
    seyfert_cone_fraction: float = _fraction(
        1.0, description="type-2 Seyferts whose ENLR is a cone (else round)")
    one_sided_cone_fraction: float = _fraction(0.3, description="cones seen on one side only")
    repeat_fraction: float = Field(0.03, ge=0, lt=1,
                                   description="observations that re-observe an earlier galaxy")
    secondary_fraction: float = _fraction(
        1 / 3, description="galaxies whose IFU covers 2.5 Re (else 1.5 Re)")
    bundles: dict[int, int] = Field(default_factory=lambda: dict(MANGA_BUNDLES),
                                    description="IFU bundles per plate, by fibre count")
    psf_fwhm: float = Field(2.5, gt=0, description="median r-band PSF FWHM [arcsec]")
    noise_scale: float = Field(1.0, gt=0, description="multiplies every noise level")
    forestar_rate: float = _fraction(0.05, description="observations with a foreground star")
    fitfailed_rate: float = _fraction(0.002, description="per-spaxel FITFAILED rate")
    dapdone_failure_rate: float = _fraction(
        0.004, description="cubes the DAP faulted on (no MAPS file)")
    critical_rate: float = _fraction(0.005, description="observations with DRP3QUAL CRITICAL")
    agn_catalogue: AgnCatalogueConfig = AgnCatalogueConfig()

    @model_validator(mode="after")
    def _rare_kinds_fit_their_hosts(self):
        weights = dict(zip(BASE_CLASSES, self.classes.weights(), strict=True))
        for host in NORMAL_CLASSES:
            share = sum(self.rare_kind_probabilities(host).values())
            if weights[host] > 0 and share > 1:
                raise ValueError(f"rare kinds take {share:.0%} of the {host} galaxies; "
                                 "lower rare_kinds")
        return self

    def rare_kind_probabilities(self, host: str) -> dict[str, float]:
        """Probability that a galaxy of base class ``host`` gets each rare kind."""
        weights = dict(zip(BASE_CLASSES, self.classes.weights(), strict=True))
        out = {}
        for kind in RARE_KINDS:
            hosts = RARE_HOSTS[kind]
            total = sum(weights[h] for h in hosts)
            if host in hosts and total > 0:
                out[kind] = getattr(self.rare_kinds, kind) / total
        return out

    @field_validator("bundles")
    @classmethod
    def _known_bundles(cls, value: dict[int, int]) -> dict[int, int]:
        unknown = sorted(set(value) - set(MANGA_BUNDLES))
        if unknown:
            raise ValueError(f"unknown bundle sizes {unknown}; MaNGA has {list(MANGA_BUNDLES)}")
        if any(v < 0 for v in value.values()) or sum(value.values()) == 0:
            raise ValueError("bundle counts must be >= 0 with at least one bundle")
        return dict(sorted(value.items()))
