"""The survey plan (plates, IFUs, repeat observations) and each galaxy's physical parameters.

Random streams: observation ``i`` of a survey with seed ``s`` owns the child
``np.random.SeedSequence(s).spawn(n)[i]``; its sub-streams are that child's spawned children
(``spawn_key = (i, k)``): ``k = 0`` the plan, ``1`` the galaxy's intrinsic parameters, ``2`` the
observation (PSF, noise, pipeline flags), ``3`` the extensions only full files carry, ``4`` the
galaxy's spatial structure (rare kind, AGN narrow-line region). A repeat observation reuses the
intrinsic and structure streams of the galaxy's first observation, so both show the same galaxy. Nothing depends on the number of
workers or on the order in which observations are simulated.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import gamma

import numpy as np

from linecube.lines import LOG_HA_LUMINOSITY_PER_SFR
from linecube.simulate import cosmology, emission
from linecube.simulate import instrument as ins
from linecube.simulate.config import (
    BASE_CLASSES,
    CLASSES,
    NORMAL_CLASSES,
    RARE_HOSTS,
    RARE_KINDS,
    SimulationConfig,
)

PLAN, INTRINSIC, OBSERVATION, FULL_EXTRAS, STRUCTURE = 0, 1, 2, 3, 4
_PLATE_STREAM = 2**32  # spawn_key root for plate-level draws (never an observation index)
FIRST_PLATE = 7443  # lowest MaNGA plate id

# Hexagon diameter (vertex to vertex, arcsec) and the two usual map sizes of each bundle
# (format doc §6, Drory et al. 2015).
HEX_DIAMETER = {19: 12.5, 37: 17.5, 61: 22.5, 91: 27.5, 127: 32.5}
MAP_SIZES = {19: (32, 34), 37: (42, 44), 61: (52, 54), 91: (62, 64), 127: (72, 74)}
PLATE_RADIUS = 1.49  # radius of a plate's field [deg]
RE_PER_DISK_SCALE = 1.678  # effective radius of an exponential disk in scale lengths
DETECTION_WIDTH = 0.3  # dex of L[OIII] over which a detection probability rises (sigmoid)


def stream(seed: int, *key: int) -> np.random.Generator:
    """Generator of ``SeedSequence(seed)`` spawned along ``key`` (see the module docstring)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class ObservationPlan:
    """One MAPS file of the survey.

    Attributes:
        index: observation number (0-based; ``DRPALLINDX``).
        galaxy: observation number of this galaxy's first observation (the MANGAID owner).
        plate, ifudesign: the plate and the bundle used for this observation.
        galaxy_fibres: bundle size of the galaxy's first observation, which set the target's
            Re coverage (1.5 or 2.5 Re, as in MaNGA's target selection).
        galaxy_plate: plate of the galaxy's first observation (sets its sky position).
        forced_kind: rare kind given to this galaxy by ``min_per_kind`` ("" when drawn).
    """

    index: int
    galaxy: int
    plate: int
    ifudesign: int
    galaxy_fibres: int
    galaxy_plate: int
    forced_kind: str = ""

    @property
    def plateifu(self) -> str:
        return f"{self.plate}-{self.ifudesign}"

    @property
    def mangaid(self) -> str:
        return f"1-{200001 + self.galaxy}"

    @property
    def fibres(self) -> int:
        return self.ifudesign // 100

    @property
    def is_repeat(self) -> bool:
        return self.galaxy != self.index


def plan_survey(n: int, seed: int, config: SimulationConfig) -> list[ObservationPlan]:
    """Plates of ``sum(config.bundles)`` IFUs filled in order, with repeat observations.

    Observation ``i > 0`` re-observes an earlier galaxy with probability
    ``config.repeat_fraction`` (drawn from its plan stream).
    """
    designs = [fib * 100 + k + 1 for fib, count in config.bundles.items() for k in range(count)]
    per_plate = len(designs)
    slots: list[int] = []
    for plate in range(-(-n // per_plate)):
        slots += list(stream(seed, _PLATE_STREAM, plate).permutation(designs))
    plans: list[ObservationPlan] = []
    for i in range(n):
        rng = stream(seed, i, PLAN)
        galaxy = i
        if i > 0 and rng.random() < config.repeat_fraction:
            galaxy = plans[int(rng.integers(i))].galaxy
        ifu = int(slots[i])
        plate = FIRST_PLATE + i // per_plate
        first = plans[galaxy] if galaxy != i else None
        plans.append(ObservationPlan(i, galaxy, plate, ifu,
                                     first.fibres if first else ifu // 100,
                                     first.plate if first else plate,
                                     first.forced_kind if first else ""))
        if first is None:
            plans[i] = _force_kind(plans, seed, config)
    return plans


def _force_kind(plans: list[ObservationPlan], seed: int, config: SimulationConfig
                ) -> ObservationPlan:
    """The last (first-observation) plan, given the next rare kind if ``min_per_kind`` still
    asks for one: the first star-forming galaxies of the survey take the kinds in turn, so the
    choice depends only on earlier galaxies (not on the survey size)."""
    plan = plans[-1]
    wanted = [k for k in RARE_KINDS if getattr(config.rare_kinds, k) > 0] * config.min_per_kind
    given = sum(1 for p in plans[:-1] if p.forced_kind and not p.is_repeat)
    if given >= len(wanted) or base_class(seed, plan.galaxy, config) != "star_forming":
        return plan
    return replace(plan, forced_kind=wanted[given])


def base_class(seed: int, galaxy: int, config: SimulationConfig) -> str:
    """The galaxy's class drawn from ``config.classes`` (the first draw of its stream)."""
    rng = stream(seed, galaxy, INTRINSIC)
    return str(rng.choice(BASE_CLASSES, p=config.classes.weights()))


@dataclass
class GalaxyParams:
    """Intrinsic properties of one galaxy (scalars go to the truth table).

    Angles in degrees, sizes in arcsec unless the name says kpc, luminosities log10 erg/s.
    ``extra`` holds the non-scalar parts (line templates, HII-region clumps).
    """

    galaxy_class: str
    is_agn: bool
    agn_kind: str  # "", "seyfert", "liner" or "composite"
    host: str  # "star_forming" or "retired"
    log_mstar: float
    log_sfr: float
    z: float
    re_kpc: float
    re_arcsec: float
    coverage_re: float
    sersic_n: float
    ba: float
    inclination: float
    pa: float
    ra: float
    dec: float
    ebv_gal: float
    ebv_center: float
    oh_center: float
    oh_gradient: float
    v_max: float
    r_turn: float
    sigma_gas: float
    v_sys: float
    cont_re: float  # continuum at rest 6000 Å at Re [1e-17 erg/s/cm^2/Å/spaxel, observed]
    sed_beta: float
    d4000: float
    ew_diffuse: float  # Hα EW of the diffuse (DIG/LIER) gas [Å]
    log_l_ha_sf: float
    log_l_oiii_nucleus: float
    nucleus_fraction: float
    cone: bool
    cone_pa: float
    n_clumps: int
    wise_agn: bool = False
    bat_agn: bool = False
    radio_agn: bool = False
    radio_class: str = ""
    broad_agn: bool = False
    host_class: str = ""  # the class without its rare structure (= galaxy_class otherwise)
    anomaly_kind: str = "none"
    nlr_radius_kpc: float = float("nan")  # AGN ENLR (Seyfert) or LIER (LINER) extent
    cone_opening: float = float("nan")  # cone half-opening angle [deg]
    cone_sides: int = 0  # 2 bi-conical, 1 one-sided, 0 round or none
    structure_r: float = float("nan")  # rare kind's radius / offset / length [arcsec]
    structure_pa: float = float("nan")  # rare kind's direction [deg east of north]
    structure_amount: float = float("nan")  # rare kind's Hα share (dust lane: peak E(B-V))
    extra: dict = field(default_factory=dict, repr=False)

    def scalars(self) -> dict:
        """The truth-table columns."""
        return {k: v for k, v in self.__dict__.items() if k != "extra"}


# Continuum luminosity density at 6000 Å per solar mass [erg/s/Å/Msun]: the Sun's
# L_λ(6000 Å) ≈ 6.5e29 erg/s/Å divided by an r-band M/L of ~1 (star-forming), ~3 (old) and
# ~0.3 (starburst dwarfs) (Bell et al. 2003).
LIGHT_PER_MASS = {"star_forming": 6.5e29, "retired": 2.2e29, "blueberry": 2.0e30}


def _continuum_at_re(log_m: float, host: str, cls: str, z: float, re: float, ba: float,
                     n: float) -> float:
    """Observed continuum at rest 6000 Å at one Re [1e-17 erg/s/cm^2/Å per spaxel] of a Sérsic
    galaxy of stellar mass 10^log_m."""
    light = LIGHT_PER_MASS["blueberry" if cls == "blueberry" else host] * 10**log_m
    d = float(cosmology.luminosity_distance_cm(z))
    total = light / (4 * np.pi * d**2 * (1 + z)) * (1 / ins.FLUX_UNIT)
    b = sersic_b(n)
    area = 2 * np.pi * n * ba * re**2 * np.exp(b) * gamma(2 * n) / b ** (2 * n)
    return float(total / area * ins.PIXEL**2)


def sersic_b(n: float) -> float:
    """b_n of a Sérsic profile exp(-b_n ((r/Re)^(1/n) - 1)) (Ciotti & Bertin 1999 expansion)."""
    return 2 * n - 1 / 3 + 0.009876 / n


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def draw_galaxy(seed: int, plan: ObservationPlan, config: SimulationConfig,
                galaxy_class: str | None = None) -> GalaxyParams:
    """Draw the galaxy of ``plan`` from its intrinsic stream (shared by repeat observations).

    The steps draw from the intrinsic stream in this order: identity, size and distance, gas,
    stars and kinematics, line templates, disk details, sky position, orientation, AGN
    detections. The rare kind, the AGN's extended emission and the rare structure come from
    the galaxy's structure stream.
    """
    rng = stream(seed, plan.galaxy, INTRINSIC)
    srng = stream(seed, plan.galaxy, STRUCTURE)
    who = _draw_identity(plan, config, galaxy_class, rng, srng)
    size = _draw_size(who, plan, config, rng)
    gas = _draw_gas(who, size["log_mstar"], rng)
    stars = _draw_stars(who, size, rng)
    templates, nucleus = _draw_templates(who, rng)
    disk, extra = _draw_disk_details(who, size["re_arcsec"], rng)
    extra["templates"] = templates
    position = _draw_position(seed, plan, rng)
    params = GalaxyParams(
        galaxy_class=who.cls, is_agn=bool(who.agn_kind), agn_kind=who.agn_kind, host=who.host,
        **size, **gas, **stars, **nucleus, **disk, **position,
        **_draw_orientation(size["re_arcsec"], rng),
        cone=False, host_class=who.cls, anomaly_kind=who.kind or who.cls, extra=extra,
    )
    if who.kind:
        params.galaxy_class = who.kind
    elif who.cls in NORMAL_CLASSES:
        params.anomaly_kind = "none"
    _draw_agn_detections(params, rng, config)
    _draw_nlr(params, srng, config)
    if who.kind:
        _draw_structure(params, srng)
    return params


@dataclass(frozen=True)
class _Identity:
    """What kind of galaxy is drawn: ionisation class, rare kind, AGN kind and host type."""

    cls: str  # base class (a rare kind's host class when ``kind`` is set)
    kind: str  # rare kind, "" for none
    agn_kind: str  # "", "seyfert", "liner" or "composite"
    host: str  # "star_forming" or "retired"


def _draw_identity(plan: ObservationPlan, config: SimulationConfig, galaxy_class: str | None,
                   rng: np.random.Generator, srng: np.random.Generator) -> _Identity:
    """Class from ``config.classes`` (or ``galaxy_class``), rare kind (structure stream),
    whether a composite's nucleus is an AGN, and the host: most LINERs and 40 % of Seyferts
    sit in retired galaxies."""
    cls = str(rng.choice(BASE_CLASSES, p=config.classes.weights()))
    kind = plan.forced_kind or _draw_kind(cls, srng, config)
    if galaxy_class is not None:
        if galaxy_class not in CLASSES:
            raise ValueError(f"unknown class {galaxy_class!r}; classes are {', '.join(CLASSES)}")
        kind = galaxy_class if galaxy_class in RARE_KINDS else ""
        cls = galaxy_class if not kind else cls
    if kind and cls not in RARE_HOSTS[kind]:
        cls = RARE_HOSTS[kind][0]
    agn_kind = {"seyfert": "seyfert", "liner": "liner"}.get(cls, "")
    if cls == "composite" and rng.random() < config.composite_agn_fraction:
        agn_kind = "composite"
    host = "retired" if cls == "retired" else "star_forming"
    if cls == "seyfert" and rng.random() < 0.4 or cls == "liner" and rng.random() < 0.8:
        host = "retired"
    return _Identity(cls, kind, agn_kind, host)


def _draw_size(who: _Identity, plan: ObservationPlan, config: SimulationConfig,
               rng: np.random.Generator) -> dict:
    """Stellar mass, size, redshift (from the IFU coverage) and inclination.

    Every class's mass is drawn (one draw each, in a fixed order) so the stream does not
    depend on the class.
    """
    u, n = rng.uniform, rng.normal
    cls = who.cls
    # Stellar mass (MaNGA is roughly flat in log M*, Wake et al. 2017) and size (mass-size
    # relations of Shen et al. 2003, late and early types).
    log_m = {"star_forming": u(9.0, 11.0), "retired": u(9.8, 11.6), "seyfert": n(10.6, 0.35),
             "liner": n(10.9, 0.3), "composite": n(10.5, 0.35), "shock_merger": n(10.5, 0.35),
             "blueberry": u(7.5, 8.5)}[cls]
    if cls == "blueberry":
        log_re_kpc = u(-0.6, 0.0)
    elif who.host == "retired":
        log_re_kpc = 0.45 + 0.56 * (log_m - 10.5) + n(0, 0.12)
    else:
        log_re_kpc = 0.60 + 0.22 * (log_m - 10.0) + n(0, 0.12)
    re_kpc = 10**log_re_kpc

    # Redshift from the IFU coverage (MaNGA Primary 1.5 Re, Secondary 2.5 Re; Wake et al. 2017).
    hex_radius = HEX_DIAMETER[plan.galaxy_fibres] / 2
    coverage = 2.5 if rng.random() < config.secondary_fraction else 1.5
    if cls == "blueberry":
        z = u(0.015, 0.05)
    else:
        z = cosmology.redshift_for_scale(re_kpc / (hex_radius / coverage)) * np.exp(n(0, 0.1))
    z = float(np.clip(z, 0.01, 0.15))
    re_arcsec = float(re_kpc / cosmology.kpc_per_arcsec(z))

    q0 = 0.2 if who.host == "star_forming" else 0.6  # intrinsic thickness
    cos_i = u(0.15 if who.host == "star_forming" else 0.0, 1.0)
    return {"log_mstar": float(log_m), "re_kpc": float(re_kpc), "z": z, "re_arcsec": re_arcsec,
            "coverage_re": float(hex_radius / re_arcsec),
            "ba": float(np.sqrt(cos_i**2 * (1 - q0**2) + q0**2)),
            "inclination": float(np.degrees(np.arccos(cos_i)))}


def _draw_gas(who: _Identity, log_m: float, rng: np.random.Generator) -> dict:
    """Star formation rate, gas metallicity (centre, gradient) and central dust."""
    u, n = rng.uniform, rng.normal
    cls = who.cls
    # Star formation: main sequence log SFR = 0.76 log M* - 7.64 (Renzini & Peng 2015),
    # L(Hα) = SFR x 10^41.27 erg/s (Kennicutt & Evans 2012).
    ms = 0.76 * log_m - 7.64
    log_sfr = {"star_forming": ms + n(0, 0.25), "retired": ms - 1.5 + n(0, 0.3),
               "seyfert": ms - 0.8 + n(0, 0.3), "liner": ms - 1.2 + n(0, 0.3),
               "composite": ms - 0.3 + n(0, 0.25), "shock_merger": ms + 0.1 + n(0, 0.25),
               "blueberry": log_m - 8.0 + n(0, 0.2)}[cls]
    sf_host = who.host == "star_forming"
    log_l_ha_sf = log_sfr + LOG_HA_LUMINOSITY_PER_SFR if sf_host else -np.inf

    # Gas-phase metallicity: mass-metallicity-like centre, -0.1 dex/Re gradient
    # (Sánchez et al. 2014), capped where the N2/O3N2 calibrations hold.
    oh_max = emission.OH_RANGE[1]
    oh_center = float(np.clip(8.55 + 0.12 * (log_m - 10.0) + n(0, 0.05), 8.0, oh_max))
    oh_gradient = float(n(-0.09, 0.04))
    if cls == "blueberry":
        oh_center, oh_gradient = float(u(7.6, 7.95)), 0.0
    ebv_center = float(np.clip(0.15 + 0.12 * (log_m - 10.0) + n(0, 0.07), 0.02, 0.7))
    if who.host == "retired":
        ebv_center = float(np.clip(n(0.08, 0.04), 0.0, 0.3))
    if cls == "blueberry":
        ebv_center = float(u(0.02, 0.10))
    return {"log_sfr": float(log_sfr), "log_l_ha_sf": float(log_l_ha_sf),
            "oh_center": oh_center, "oh_gradient": oh_gradient, "ebv_center": ebv_center}


def _draw_stars(who: _Identity, size: dict, rng: np.random.Generator) -> dict:
    """Sérsic index, rotation, gas dispersion, continuum shape and brightness, diffuse-gas EW.

    Both hosts' values are drawn (in a fixed order) before the class picks one.
    """
    u, n = rng.uniform, rng.normal
    cls, host = who.cls, who.host
    sersic = {"star_forming": u(0.8, 1.5), "retired": u(3.0, 4.5)}[host]
    if cls in ("seyfert", "liner", "composite"):
        sersic = u(1.5, 3.5)
    if cls == "blueberry":
        sersic = 1.0
    v_max = {"star_forming": u(100, 250), "retired": u(40, 180)}[host]
    if cls == "blueberry":
        v_max = u(10, 40)
    sigma_gas = {"star_forming": u(20, 45), "retired": u(60, 130)}[host]
    if cls == "blueberry":
        sigma_gas = u(35, 60)
    if cls == "shock_merger":
        sigma_gas = u(150, 260)
    if host == "retired":
        sed_beta, d4000 = u(0.1, 0.5), u(1.7, 2.0)
    else:
        sed_beta, d4000 = u(-1.2, -0.4), u(1.15, 1.5)
    ew_diffuse = u(0.6, 2.2) if host == "retired" else u(0.3, 1.0)
    cont_re = _continuum_at_re(size["log_mstar"] + n(0, 0.1), host, cls, size["z"],
                               size["re_arcsec"], size["ba"], sersic)
    return {"sersic_n": float(sersic), "v_max": float(v_max), "sigma_gas": float(sigma_gas),
            "sed_beta": float(sed_beta), "d4000": float(d4000), "ew_diffuse": float(ew_diffuse),
            "cont_re": cont_re}


def _draw_templates(who: _Identity, rng: np.random.Generator) -> tuple[dict, dict]:
    """Line templates of the diffuse gas and the nuclear source, the nucleus' strength and
    the AGN cone's direction: ``(templates, GalaxyParams fields)``."""
    u, n = rng.uniform, rng.normal
    cls = who.cls
    templates = {"diffuse": emission.template("lier" if who.host == "retired" else "dig", rng)}
    log_l_oiii = -np.inf
    nucleus_fraction = 0.0
    if cls == "seyfert":
        templates["nucleus"] = emission.template("seyfert", rng)
        log_l_oiii = n(40.8, 0.3)
    elif cls == "liner":
        templates["nucleus"] = emission.template("liner", rng)
        nucleus_fraction = u(6.0, 15.0)  # Hα EW of the nucleus in the central aperture [Å]
    elif cls == "composite":
        templates["nucleus"] = emission.template("composite", rng)
        nucleus_fraction = u(0.65, 0.85)  # nucleus share of the central Hα
    elif cls == "shock_merger":
        templates["shock"] = emission.template("shock", rng)
        nucleus_fraction = u(0.75, 0.9)  # shock share of the central Hα
    elif cls == "blueberry":
        templates["starburst"] = emission.template("blueberry", rng)
    return templates, {"log_l_oiii_nucleus": float(log_l_oiii),
                       "nucleus_fraction": float(nucleus_fraction), "cone_pa": float(u(0, 180))}


def _draw_disk_details(who: _Identity, re_arcsec: float,
                       rng: np.random.Generator) -> tuple[dict, dict]:
    """HII-region clumps (star-forming hosts), spiral arms and a merger companion:
    ``({"n_clumps": K}, extra)`` with the (K,) clump arrays and scalars in ``extra``."""
    u, n = rng.uniform, rng.normal
    sf_host = who.host == "star_forming"
    # HII-region clumps: positions from the exponential disk, sizes 0.3-0.7 arcsec.
    n_clumps = int(rng.poisson(18)) if sf_host else 0
    rd = re_arcsec / RE_PER_DISK_SCALE
    r_cl = rng.gamma(2.0, rd, n_clumps)  # radius distribution of an exponential disk
    phi_cl = rng.uniform(0, 2 * np.pi, n_clumps)
    extra = {
        "clump_r": r_cl, "clump_phi": phi_cl, "clump_sigma": rng.uniform(0.3, 0.7, n_clumps),
        "clump_weight": rng.exponential(1.0, n_clumps),
        "arm_phase": float(u(0, 2 * np.pi)), "arm_pitch": float(u(12, 30)),
        "arm_amplitude": float(u(0.2, 0.5)) if sf_host else 0.0,
        "companion_r": float(u(0.8, 1.5)), "companion_phi": float(u(0, 2 * np.pi)),
        "companion_dv": float(n(0, 120)),
    }
    return {"n_clumps": n_clumps}, extra


def _draw_position(seed: int, plan: ObservationPlan, rng: np.random.Generator) -> dict:
    """RA, Dec within 1.49 degrees (a plate's radius) of the plate centre; plate centres
    spread over the SDSS footprint (drawn from the plate's own stream)."""
    prng = stream(seed, _PLATE_STREAM, 1, plan.galaxy_plate)
    ra0, dec0 = prng.uniform(110, 260), prng.uniform(0, 65)
    r_off, t_off = PLATE_RADIUS * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
    dec = float(dec0 + r_off * np.sin(t_off))
    return {"ra": float((ra0 + r_off * np.cos(t_off) / np.cos(np.radians(dec))) % 360),
            "dec": dec}


def _draw_orientation(re_arcsec: float, rng: np.random.Generator) -> dict:
    """Position angle, Galactic E(B-V), rotation-curve turnover radius and systemic velocity
    (drawn in this order, after the sky position)."""
    return {"pa": float(rng.uniform(0, 180)),
            "ebv_gal": float(np.clip(rng.lognormal(np.log(0.03), 0.5), 0.005, 0.2)),
            "r_turn": float(rng.uniform(0.1, 0.4) * re_arcsec),
            "v_sys": float(rng.normal(0, 15))}


def _draw_kind(cls: str, rng: np.random.Generator, config: SimulationConfig) -> str:
    """A rare kind for a galaxy of base class ``cls`` ("" for none)."""
    probs = config.rare_kind_probabilities(cls)
    x, edge = rng.random(), 0.0
    for kind, prob in probs.items():
        edge += prob
        if x < edge:
            return kind
    return ""


# Size-luminosity relation of extended narrow-line regions in MaNGA AGN (Chen et al. 2019,
# MNRAS 489, 855): slope 0.42; the normalisation and the scatter are approximate.
NLR_SLOPE, NLR_LOG_R41, NLR_SCATTER = 0.42, 0.25, 0.2  # log R[kpc] at L[OIII] = 1e41 erg/s


def nlr_radius_relation(log_l_oiii: np.ndarray) -> np.ndarray:
    """Median log10 ENLR radius [kpc] at log L[OIII] [erg/s] (Chen et al. 2019 slope)."""
    return NLR_LOG_R41 + NLR_SLOPE * (np.asarray(log_l_oiii) - 41.0)


def _draw_nlr(p: GalaxyParams, rng: np.random.Generator, config: SimulationConfig) -> None:
    """Extent and geometry of the AGN's extended emission (Seyfert ENLR, LINER LIER)."""
    if p.galaxy_class == "seyfert":
        log_r = nlr_radius_relation(p.log_l_oiii_nucleus) + rng.normal(0, NLR_SCATTER)
        p.nlr_radius_kpc = float(10**log_r)
        p.cone = bool(not p.broad_agn and rng.random() < config.seyfert_cone_fraction)
        if p.cone:
            p.cone_sides = 1 if rng.random() < config.one_sided_cone_fraction else 2
            p.cone_opening = float(rng.uniform(20, 45))
        p.extra["nlr_share"] = float(rng.uniform(0.3, 0.6))
    elif p.galaxy_class == "liner":
        p.nlr_radius_kpc = float(10 ** rng.uniform(0.0, 0.5))
        p.extra["nlr_share"] = float(rng.uniform(0.5, 1.0))


def _draw_structure(p: GalaxyParams, rng: np.random.Generator) -> None:
    """Geometry and strength of the galaxy's rare spatial kind (in ``structure_*``)."""
    u = rng.uniform
    kpc = float(cosmology.kpc_per_arcsec(p.z))
    kind = p.galaxy_class
    p.structure_pa = float(u(0, 360))
    if kind == "sf_ring":  # outer / collisional ring of HII regions
        p.structure_r, p.structure_amount = float(u(0.8, 1.5) * p.re_arcsec), float(u(0.4, 0.6))
    elif kind == "nuclear_ring":  # bar-driven circumnuclear starburst ring
        p.structure_r = float(max(u(0.5, 1.2) / kpc, 1.5))
        p.structure_amount = float(u(0.3, 0.5))
    elif kind == "stripped_tail":  # ram-pressure-stripped tail of star formation
        p.structure_r, p.structure_amount = float(u(1.0, 2.0) * p.re_arcsec), float(u(0.15, 0.3))
    elif kind == "double_nucleus":  # late merger: a second nucleus with its own gas
        p.structure_r = float(max(u(0.3, 0.8) * p.re_arcsec, 2.0))
        p.structure_amount = float(u(0.1, 0.25))  # continuum share of the second core
        p.extra["second_dv"] = float(rng.choice([-1, 1]) * u(50, 200))
    elif kind == "dust_lane":  # a lane of extra dust along the major axis
        p.structure_r = float(u(-0.2, 0.2) * p.re_arcsec)  # offset along the minor axis
        p.structure_pa = p.pa
        p.structure_amount = float(u(0.4, 0.9))
        p.extra["lane_width"] = float(u(0.5, 1.0))
    elif kind == "agn_cloud":  # gas far from the nucleus ionised by a (faded) AGN
        p.structure_r, p.structure_amount = float(u(0.8, 1.4) * p.re_arcsec), float(u(0.02, 0.05))
        p.extra["cloud_sigma"] = float(u(0.6, 1.2))
        p.extra["templates"]["cloud"] = emission.template("seyfert", rng)


def _draw_agn_detections(p: GalaxyParams, rng: np.random.Generator,
                         config: SimulationConfig) -> None:
    """Which selection methods of the AGN catalogue find this galaxy (drawn once per galaxy)."""
    c = config.agn_catalogue
    draws = rng.random(5)
    if p.agn_kind == "seyfert":
        p.wise_agn = bool(draws[0] < c.wise_max * _sigmoid((p.log_l_oiii_nucleus - c.wise_l50)
                                                           / DETECTION_WIDTH))
        p.bat_agn = bool(draws[1] < c.bat_max * _sigmoid((p.log_l_oiii_nucleus - c.bat_l50)
                                                         / DETECTION_WIDTH))
        p.radio_agn = bool(draws[2] < c.radio_seyfert)
        p.broad_agn = bool(draws[3] < c.broad_seyfert)
        p.radio_class = "HERG" if p.radio_agn else ""
    elif p.agn_kind in ("liner", "composite"):
        rate = c.radio_liner if p.agn_kind == "liner" else c.radio_composite
        p.radio_agn = bool(draws[2] < rate)
        p.radio_class = "LERG" if p.radio_agn else ""
    elif draws[4] < c.false_positive_rate:
        p.radio_agn, p.radio_class = True, "LERG"
