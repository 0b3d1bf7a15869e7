"""Simulate a whole survey to disk: MAPS files, DAPall, truth table, AGN catalogue.

Output layout (``OUT``)::

    OUT/simulation.json                      settings (seed, n, format, config) of the survey
    OUT/maps/manga-PLATE-IFU-MAPS-DAPTYPE.fits.gz   one DAP MAPS file per observation (dr17, dr15)
    OUT/mmu/manga/healpix=NNNN/001-of-001.hdf5      Multimodal Universe files (format "mmu")
    OUT/dapall-v3_1_1-3.1.0.fits             DAPall (dapall-v2_4_3-2.2.1.fits for dr15)
    OUT/truth.parquet, OUT/truth.fits        one row per observation: class and parameters
    OUT/agn_catalogue.fits                   MaNGA AGN VAC style catalogue (incomplete)
    OUT/truth_maps.fits                      per-spaxel truth: dominant component per spaxel
    OUT/spaxel_classes/manga-PLATE-IFU-CLASSES.fits.gz   per-spaxel classes (optional)
    OUT/.progress/NNNNNN.json                per-observation records, for resuming

Workers generate and write inside their process and return only small records, so memory
does not grow with the number of workers or galaxies. A killed run resumes: observations
with a record are not simulated again.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from astropy.io import fits

from linecube import __version__
from linecube.atomic import (
    atomic_write_bytes,
    atomic_write_fits_table,
    atomic_write_json,
    atomic_write_parquet,
    json_default,
)
from linecube.bits import bit_value
from linecube.errors import ConfigError
from linecube.io.dapall import DAPTYPES, write_dapall
from linecube.io.galaxy import Galaxy
from linecube.io.maps_writer import maps_filename, write_maps
from linecube.io.mmu import write_mmu
from linecube.lines import DR15_LINES
from linecube.progress import progress_bar
from linecube.simulate.config import SimulationConfig
from linecube.simulate.emission import IDX, NAMES, apply_ties
from linecube.simulate.galaxy import (
    ANOMALOUS_CODES,
    SPAXEL_CODES,
    SimulatedObservation,
    simulate_observation,
)
from linecube.simulate.healpix import ang2pix_nest
from linecube.simulate.population import ObservationPlan, draw_galaxy, plan_survey

Format = Literal["dr17", "dr15", "mmu"]
FORMATS = ("dr17", "dr15", "mmu")
SIMULATED_DAPTYPE = {"dr17": "HYB10-MILESHC-MASTARSSP", "dr15": "HYB10-GAU-MILESHC",
                     "mmu": "HYB10-MILESHC-MASTARSSP"}
DAPALL_NAME = {"dr17": "dapall-v3_1_1-3.1.0.fits", "dr15": "dapall-v2_4_3-2.2.1.fits",
               "mmu": "dapall-v3_1_1-3.1.0.fits"}
MMU_NSIDE = 64
# AGN catalogue column -> truth-table column.
AGN_COLUMNS = {"MANGAID": "mangaid", "PLATEIFU": "plateifu", "OBJRA": "ra", "OBJDEC": "dec",
               "Z": "z", "WISE_AGN": "wise_agn", "BAT_AGN": "bat_agn", "RADIO_AGN": "radio_agn",
               "RADIO_CLASS": "radio_class", "BROAD_AGN": "broad_agn"}
TRUTH_MAPS = "truth_maps.fits"
OUTSIDE_MAP = -2  # truth-map code of the padding beyond an observation's map size
# Extensions of a full DR17 file that DR15 files do not have (nor the SPECINDEX_BF and
# SPECINDEX_WGT families).
DR17_ONLY = ("STELLAR_FOM", "EMLINE_GA", "EMLINE_GANR", "EMLINE_FOM", "EMLINE_LFOM",
             "EMLINE_SEW_CNT", "EMLINE_GEW_CNT", "SPECINDEX_MODEL")


@dataclass
class SurveySummary:
    """What ``simulate_survey`` did.

    Attributes:
        out: the survey directory.
        n_observations: observations (MAPS files and DAPall rows) in the survey.
        n_galaxies: distinct galaxies (MANGAIDs); the rest are repeat observations.
        n_written: MAPS files written by this run.
        n_resumed: observations found already done (a resumed run).
        n_dap_failed: observations whose simulated DAP run "faulted" (DAPDONE false, no file).
        n_agn: simulated AGN (galaxies); ``n_agn_catalogued`` of them are in the AGN catalogue.
        failures: (PLATEIFU, reason) of observations that raised an error.
        class_counts: observations per class.
        seconds: wall time.
        files: catalogue paths by name.
    """

    out: Path
    n_observations: int
    n_galaxies: int
    n_written: int
    n_resumed: int
    n_dap_failed: int
    n_agn: int
    n_agn_catalogued: int
    failures: list[tuple[str, str]] = field(default_factory=list)
    class_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    files: dict[str, Path] = field(default_factory=dict)

    def __str__(self) -> str:
        classes = ", ".join(f"{k} {v}" for k, v in sorted(self.class_counts.items()))
        text = (f"{self.n_observations} observations of {self.n_galaxies} galaxies in "
                f"{self.out} ({self.n_written} written, {self.n_resumed} resumed, "
                f"{self.n_dap_failed} DAP failures by design) in {self.seconds:.1f} s; "
                f"classes: {classes}; AGN {self.n_agn}, {self.n_agn_catalogued} catalogued")
        if self.failures:
            text += f"; {len(self.failures)} FAILED: " + "; ".join(
                f"{p}: {r}" for p, r in self.failures[:5])
        return text


def simulate_survey(out: str | Path, n: int, seed: int = 0, *,
                    config: SimulationConfig | None = None, workers: int = 1,
                    full: bool = False, format: Format = "dr17", spaxel_classes: bool = False,
                    progress: bool = False) -> SurveySummary:
    """Simulate ``n`` MaNGA observations into ``out`` (layout in the module docstring).

    Args:
        out: output directory (created; an existing survey there with other settings is an
            error, the same settings resume it).
        n: number of observations (MAPS files), including repeat observations.
        seed: the only source of randomness; the same seed gives byte-identical files.
        config: simulation settings (defaults when None).
        workers: processes; results do not depend on it.
        full: write all 64 (DR17) / 48 (DR15) HDUs instead of the default set.
        format: ``"dr17"`` or ``"dr15"`` MAPS files, or ``"mmu"`` Multimodal Universe HDF5.
        spaxel_classes: also write per-spaxel class maps.
        progress: show a progress bar on stderr.
    """
    config = config or SimulationConfig()
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if format == "mmu" and full:
        raise ConfigError("full=True applies to MAPS files (format dr17 or dr15), "
                          "not to format 'mmu'")
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_manifest(out, {"linecube": __version__, "n": n, "seed": seed, "format": format,
                          "full": full, "spaxel_classes": spaxel_classes,
                          "config": config.model_dump(mode="json")})
    plans = plan_survey(n, seed, config)
    progress_dir = out / ".progress"
    progress_dir.mkdir(exist_ok=True)
    records: dict[int, dict] = {}
    for plan in plans:
        rec = _load_record(progress_dir, plan.index)
        if rec is not None:
            records[plan.index] = rec
    resumed = len(records)
    todo = [p for p in plans if p.index not in records]
    tasks = _tasks(todo, seed, config, format)
    job = {"seed": seed, "config": config.model_dump(mode="json"), "out": str(out),
           "full": full, "format": format, "spaxel_classes": spaxel_classes}
    bar = progress_bar(len(todo), "simulate", "obs", disable=not progress)
    try:
        for batch in _run(tasks, job, workers):
            for rec in batch:
                records[rec["observation"]] = rec
            bar.update(len(batch))
    finally:
        bar.close()
    ordered = [records[p.index] for p in plans if p.index in records]
    failures = [(r["plateifu"], r["error"]) for r in ordered if "error" in r]
    good = [r for r in ordered if "error" not in r]
    files = _write_catalogues(out, good, format)
    truth = [r["truth"] for r in good]
    first = [t for t in truth if not t["is_repeat"]]
    return SurveySummary(
        out=out, n_observations=n, n_galaxies=len({p.galaxy for p in plans}),
        n_written=sum(1 for r in good if r.get("written") and r["observation"] in
                      {p.index for p in todo}),
        n_resumed=resumed, n_dap_failed=sum(1 for t in truth if not t["dapdone"]),
        n_agn=sum(1 for t in first if t["is_agn"]),
        n_agn_catalogued=sum(1 for t in first if t["is_agn"] and _catalogued(t)),
        failures=failures, class_counts=dict(Counter(t["class"] for t in truth)),
        seconds=time.perf_counter() - start, files=files,
    )


# ---- planning and execution ---------------------------------------------------------------

def _tasks(todo: list[ObservationPlan], seed: int, config: SimulationConfig,
           format: str) -> list[list[ObservationPlan]]:
    """Units of work: one observation, or one HEALPix tile for the mmu format."""
    if format != "mmu":
        return [[p] for p in todo]
    tiles: dict[int, list[ObservationPlan]] = {}
    for p in todo:
        g = draw_galaxy(seed, p, config)
        tiles.setdefault(int(ang2pix_nest(MMU_NSIDE, g.ra, g.dec)), []).append(p)
    return [tiles[k] for k in sorted(tiles)]


def _run(tasks: list[list[ObservationPlan]], job: dict, workers: int) -> Iterator[list[dict]]:
    if workers == 1 or len(tasks) <= 1:
        for task in tasks:
            yield _work(task, job)
        return
    chunk = max(1, min(8, len(tasks) // (4 * workers)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        yield from pool.map(_work, tasks, [job] * len(tasks), chunksize=chunk)


def _work(task: list[ObservationPlan], job: dict) -> list[dict]:
    """Simulate and write the observations of one task; return their small records."""
    config = SimulationConfig.model_validate(job["config"])
    out = Path(job["out"])
    fmt = job["format"]
    records: list[dict] = []
    done: list = []
    for plan in task:
        try:
            obs = simulate_observation(plan, job["seed"], config, full=job["full"])
            if fmt != "mmu" and obs.dapdone:
                _write_maps(out, obs, fmt, job["full"])
            if job["spaxel_classes"] and obs.dapdone:
                _write_classes(out, obs)
            rec = _record(obs, written=obs.dapdone, fmt=fmt)
            if fmt == "mmu":
                done.append((rec, obs))
            else:
                _save_record(out / ".progress", rec)
        except Exception as exc:  # recorded, reported in the summary; the survey carries on
            rec = {"observation": plan.index, "plateifu": plan.plateifu,
                   "error": f"{type(exc).__name__}: {exc}"}
        records.append(rec)
    if fmt == "mmu" and done:
        try:
            _write_mmu_tile(out, [obs for _, obs in done])
        except Exception as exc:  # the tile's observations are reported as failed
            reason = f"writing the MMU tile failed: {type(exc).__name__}: {exc}"
            failed = {rec["observation"] for rec, _ in done}
            return [{"observation": r["observation"], "plateifu": r["plateifu"],
                     "error": reason} if r["observation"] in failed else r for r in records]
        for rec, _ in done:
            _save_record(out / ".progress", rec)
    return records


def _record(obs: SimulatedObservation, written: bool, fmt: str) -> dict:
    """The small JSON record of one observation (truth and DAPall rows, truth map)."""
    truth = dict(obs.truth)
    truth["maps_file"] = _maps_relpath(obs.plan.plateifu, fmt) if written else ""
    return {"observation": obs.plan.index, "plateifu": obs.plan.plateifu, "written": written,
            "truth": truth, "dapall": obs.dapall,
            "truth_map": base64.b64encode(obs.spaxel_class.astype(np.int8).tobytes()).decode()}


def _maps_relpath(plateifu: str, fmt: str) -> str:
    if fmt == "mmu":
        return ""
    return f"maps/{maps_filename(plateifu, SIMULATED_DAPTYPE[fmt])}"


def _save_record(directory: Path, rec: dict) -> None:
    atomic_write_bytes(directory / f"{rec['observation']:06d}.json",
                       json.dumps(rec, default=json_default).encode())


def _load_record(directory: Path, index: int) -> dict | None:
    path = directory / f"{index:06d}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a damaged record: the observation is simulated again


def _check_manifest(out: Path, manifest: dict) -> None:
    """Write ``simulation.json``, or check that the survey already in ``out`` has the same."""
    path = out / "simulation.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != manifest:
            diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            raise ConfigError(f"{out} holds a survey simulated with other settings "
                              f"({', '.join(diff)} differ); use a new directory")
        return
    atomic_write_json(path, manifest)


# ---- writers --------------------------------------------------------------------------------

def to_release(maps: dict[str, np.ndarray], release: str) -> dict[str, np.ndarray]:
    """DR17 arrays -> the arrays of ``release`` (DR15: 22 channels, DR15 ties, 3-channel
    SPX_ELLCOO)."""
    if release == "dr17":
        return maps
    names = tuple(ln.name for ln in DR15_LINES)
    keep = [IDX[name] for name in names]
    out: dict[str, np.ndarray] = {}
    for key, arr in maps.items():
        if key in DR17_ONLY or key.startswith(("SPECINDEX_BF", "SPECINDEX_WGT")):
            continue
        if key.startswith("EMLINE_") and arr.ndim == 3 and arr.shape[0] == len(IDX):
            out[key] = np.ascontiguousarray(arr[keep])
        elif key in ("SPX_ELLCOO", "BIN_LWELLCOO"):
            out[key] = arr[[0, 1, 3]]
        elif key == "STELLAR_SIGMACORR":
            out[key] = arr[0]
        else:
            out[key] = arr
    ties = {ln.name: (ln.tied_to, ln.tie_ratio) for ln in DR15_LINES if ln.tied_to}
    apply_ties(out["EMLINE_GFLUX"], ties, names)
    for name, (partner, ratio) in ties.items():
        i, j = names.index(name), names.index(partner)
        out["EMLINE_GFLUX_IVAR"][i] = out["EMLINE_GFLUX_IVAR"][j] / np.float32(ratio) ** 2
    return out


def _write_maps(out: Path, obs: SimulatedObservation, fmt: str, full: bool) -> None:
    path = out / _maps_relpath(obs.plan.plateifu, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_maps(path, to_release(obs.maps, fmt), obs.header, release=fmt, full=full)


def _write_classes(out: Path, obs: SimulatedObservation) -> None:
    """The observation's per-spaxel class map as a gzipped FITS image (gzip mtime 0)."""
    plate, ifu = obs.plan.plateifu.split("-")
    hdr = fits.Header()
    hdr["PLATEIFU"] = obs.plan.plateifu
    hdr["MANGAID"] = obs.plan.mangaid
    for name, code in SPAXEL_CODES.items():
        hdr[f"CLS{code + 1}"] = (name, f"code {code}")
    hdu = fits.PrimaryHDU(obs.spaxel_class.astype(np.int16), header=hdr)
    buf = io.BytesIO()
    hdu.writeto(buf)
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0) as fh:
        fh.write(buf.getvalue())
    atomic_write_bytes(out / "spaxel_classes" / f"manga-{plate}-{ifu}-CLASSES.fits.gz",
                       gz.getvalue())


def _write_mmu_tile(out: Path, observations: list[SimulatedObservation]) -> None:
    """One Multimodal Universe HDF5 file of the finished observations of one HEALPix tile."""

    def galaxies():
        for obs in observations:
            if not obs.dapdone:
                continue
            m = obs.maps
            mask = m["EMLINE_GFLUX_MASK"]
            n = mask.shape[-1]
            good = ((mask & bit_value(["DONOTUSE"])) == 0) & (m["EMLINE_GFLUX_IVAR"] > 0)
            p = obs.params
            yield Galaxy(obs.plan.plateifu, obs.plan.mangaid, NAMES, m["EMLINE_GFLUX"],
                         m["EMLINE_GFLUX_IVAR"], mask, good, (n // 2, n // 2),
                         {"ra": p.ra, "dec": p.dec, "z": p.z, "extension": "GFLUX",
                          "healpix": int(ang2pix_nest(MMU_NSIDE, p.ra, p.dec))})

    p0 = observations[0].params
    tile = int(ang2pix_nest(MMU_NSIDE, p0.ra, p0.dec))
    write_mmu(out / "mmu" / "manga" / f"healpix={tile}" / "001-of-001.hdf5", galaxies())


def _write_catalogues(out: Path, records: list[dict], fmt: str) -> dict[str, Path]:
    """Truth table (parquet and FITS), DAPall, AGN catalogue and truth maps of ``records``."""
    files: dict[str, Path] = {}
    truth = pd.DataFrame([r["truth"] for r in records])
    files["truth"] = out / "truth.parquet"
    atomic_write_parquet(truth, files["truth"])
    files["truth_fits"] = out / "truth.fits"
    atomic_write_fits_table(truth, files["truth_fits"], "TRUTH")
    files["dapall"] = out / DAPALL_NAME[fmt]
    _write_dapall(files["dapall"], records, fmt)
    files["agn_catalogue"] = out / "agn_catalogue.fits"
    atomic_write_fits_table(_agn_catalogue(truth), files["agn_catalogue"], "AGN")
    files["truth_maps"] = out / TRUTH_MAPS
    _write_truth_maps(files["truth_maps"], records)
    return files


def _write_dapall(path: Path, records: list[dict], fmt: str) -> None:
    """One DAPall row per record and DAPTYPE of the release; DAPDONE only for the simulated
    DAPTYPE. Nothing is written without records."""
    rows = []
    release = "dr15" if fmt == "dr15" else "dr17"
    for daptype in DAPTYPES[release]:
        for r in records:
            row = dict(r["dapall"], DAPTYPE=daptype)
            row["DAPDONE"] = bool(row["DAPDONE"]) and daptype == SIMULATED_DAPTYPE[fmt]
            rows.append(row)
    if not rows:
        return
    df = pd.DataFrame(rows)
    lines = len(NAMES)
    if release == "dr15":
        keep = [IDX[ln.name] for ln in DR15_LINES]
        lines = len(keep)
        for col in df.columns:
            if col.startswith("EMLINE_"):
                df[col] = df[col].map(lambda v, k=keep: [v[i] for i in k])
    assert all(len(v) == lines for v in df["EMLINE_GFLUX_TOT"])
    write_dapall(path, df, daptypes=DAPTYPES[release], release=release)


def _agn_catalogue(truth: pd.DataFrame) -> pd.DataFrame:
    """The AGN catalogue: first observations of the galaxies any selection method found."""
    first = truth[~truth["is_repeat"]] if len(truth) else truth
    agn = first[[_catalogued(t) for t in first.to_dict("records")]] if len(first) else first
    return pd.DataFrame({column: agn.get(key, []) for column, key in AGN_COLUMNS.items()})


def _write_truth_maps(path: Path, records: list[dict]) -> None:
    """All observations' truth maps in one FITS file (layout in ``read_truth_maps``)."""
    sizes = [r["truth"]["map_size"] for r in records]
    side = max(sizes, default=0)
    cube = np.full((len(records), side, side), OUTSIDE_MAP, np.int8)
    for i, (rec, n) in enumerate(zip(records, sizes, strict=True)):
        cube[i, :n, :n] = np.frombuffer(base64.b64decode(rec["truth_map"]), np.int8).reshape(n, n)
    hdr = fits.Header()
    hdr["OUTSIDE"] = (OUTSIDE_MAP, "code beyond the observation's map size")
    for name, code in SPAXEL_CODES.items():
        hdr[f"CODE{code + 2}"] = (name, f"code {code}; anomalous: {code in ANOMALOUS_CODES}")
    hdr["ANOMCODE"] = (",".join(map(str, ANOMALOUS_CODES)), "codes of anomalous spaxels")
    index = fits.BinTableHDU.from_columns([
        fits.Column("PLATEIFU", "20A", array=[r["plateifu"] for r in records]),
        fits.Column("MANGAID", "20A", array=[r["truth"]["mangaid"] for r in records]),
        fits.Column("MAP_SIZE", "J", array=sizes),
        fits.Column("CLASS", "20A", array=[r["truth"]["class"] for r in records]),
    ], name="INDEX")
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(cube, hdr, name="CODES"), index]).writeto(buf)
    atomic_write_bytes(path, buf.getvalue())


def read_truth_maps(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``truth_maps.fits``: ``plateifu``, ``map_size`` and ``class`` (N,), and ``codes``,
    a list of N int8 (n, n) maps on each observation's MAPS grid (codes of ``SPAXEL_CODES``)."""
    with fits.open(path) as hdul:
        cube = np.asarray(hdul["CODES"].data)
        index = hdul["INDEX"].data
        plateifu = np.array([str(v).strip() for v in index["PLATEIFU"]])
        sizes = np.asarray(index["MAP_SIZE"], int)
        classes = np.array([str(v).strip() for v in index["CLASS"]])
    return {"plateifu": plateifu, "map_size": sizes, "class": classes,
            "codes": [cube[i, :n, :n].copy() for i, n in enumerate(sizes)]}


def _catalogued(t: dict) -> bool:
    """Whether any selection method of the AGN catalogue found the galaxy of truth row ``t``."""
    return bool(t["wise_agn"] or t["bat_agn"] or t["radio_agn"] or t["broad_agn"])
