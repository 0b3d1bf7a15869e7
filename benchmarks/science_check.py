"""Science check: which anomaly score finds which simulated class, out of sample, over seeds?

Follows ``shared/docs/science-protocol.md``. Simulates a survey, ingests it and, for every
training seed, cross-fits the ConvLSTM autoencoder over two folds (``data.folds = 2``): the
model of fold f never sees fold f's galaxies, nor does its residual calibration, its latent
detectors or the PCA and line-ratio isolation-forest baselines, which are fitted on the same
training galaxies. Every galaxy thus gets an out-of-sample score from each seed.

Per seed it measures, for the headline ranking (``-rank``) and every galaxy-level score: AUROC per
truth class (one against the rest) and for ``is_agn``; the Spearman correlation with the noise
floor and with the coverage (IFU size) inside each normal class; the anomalous fraction of the top
1 %; paired bootstrap intervals of AUROC differences against the baselines; and the BPT purity of
latent neighbours (k = 10, among the held-out galaxies of one fold model). The figures are then
averaged over seeds with their min-max spread. When the truth table has ``ratio_normal`` (anomalies
whose integrated line ratios are normal), their classes get a table of their own, and when the
survey has per-spaxel truth (``truth_maps.fits``) the held-out galaxies' ``anomaly_maps.zarr`` are
scored against it (pixel AUROC overall and per kind).

Every step is skipped when its output exists, so an interrupted run resumes.

Usage:
    python benchmarks/science_check.py --out /tmp/science --n 1000 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

NORMAL = ("star_forming", "retired")
BASELINES = ("score_pca", "score_ratio_iforest")


def step(name: str, done: bool) -> bool:
    """Print a step header; return whether to run it."""
    print(f"[{time.strftime('%H:%M:%S')}] {name}{' (done, skipped)' if done else ''}", flush=True)
    return not done


def train_fold(store: Path, run_dir: Path, seed: int, fold: int, args) -> Path:
    from linecube.config import parse_overrides
    from linecube.training.config import load_train_config
    from linecube.training.train import train

    model_path = run_dir / "model.safetensors"
    if step(f"train seed {seed} fold {fold}", model_path.is_file()):
        overrides = {
            "data.folds": 2,
            "data.fold": fold,
            "data.seed": seed,
            "data.in_memory": True,
            "data.batch_size": 32,
            "trainer.seed": seed,
            "trainer.max_epochs": args.epochs,
            "trainer.max_time_minutes": args.max_train_minutes,
            "trainer.progress_bar": False,
            "trainer.early_stopping_patience": "none",
            **parse_overrides(args.override or []),
        }
        cfg = load_train_config(args.preset, overrides)
        result = train(store, cfg, run_dir)
        print(f"  {result.epochs} epochs, best val loss {result.best_val_loss:.4f}", flush=True)
    return model_path


def held_out_scores(store_path: Path, model_path: Path, out: Path, n_components: int, seed: int,
                    residual: str):
    """Embed and score with one fold model (calibrated ``residual``: shape or flux); baselines
    fitted on its training galaxies.

    Returns:
        The catalogue rows of the fold's held-out galaxies (scores, split, latents ``mu``).
    """
    from linecube.analysis.baselines import pca_scores, ratio_iforest_scores
    from linecube.analysis.embed import EmbedConfig, embed
    from linecube.analysis.layout import AnalysisDir
    from linecube.analysis.scores import score
    from linecube.store import Store
    from linecube.training.modelfile import load_model

    store = Store.open(store_path)
    catalogue = out / "catalogue.parquet"
    if step(
        f"embed + score {out.name}",
        catalogue.is_file() and "score_ratio_iforest" in pd.read_parquet(catalogue),
    ):
        loaded = load_model(model_path)
        embed(loaded.model, store, out, EmbedConfig(batch_size=64, residual=residual),
              model_path=model_path,
              model_store_meta=loaded.store_meta, progress=False)
        adir = AnalysisDir(out)
        fit = np.flatnonzero(adir.catalogue()["split"] == "train")
        adir.write_columns({
            "score_pca": pca_scores(store, n_components, fit_rows=fit),
            "score_ratio_iforest": ratio_iforest_scores(store, seed=seed, fit_rows=fit),
        })
    adir = AnalysisDir(out)
    cat, _ = score(out)  # cheap: always the current headline rule
    mu, _ = adir.latents()
    held = cat["split"].to_numpy() == "holdout"
    part = cat[held].copy()
    part["mu"] = list(mu[held])
    return part


def seed_metrics(cat: pd.DataFrame, scores: list[str], n_boot: int, seed: int) -> dict:
    """Every figure of one seed's cross-fitted catalogue."""
    from scipy.stats import spearmanr

    from linecube.analysis.evaluate import bpt_purity
    from linecube.analysis.metrics import auroc, paired_auroc_differences

    out: dict[str, dict] = {"auroc": {}, "rho": {}, "top1": {}, "paired": {}, "purity": {}}
    labels = {"is_agn": cat["is_agn"].to_numpy(dtype=float)}
    labels.update({c: (cat["class"] == c).to_numpy(dtype=float) for c in sorted(cat["class"].unique())})
    values = {s: cat[s].to_numpy(dtype=np.float64) for s in scores}
    anomalous = ~cat["class"].isin(NORMAL).to_numpy()
    n_top = int(np.ceil(len(cat) / 100))
    for s, v in values.items():
        out["auroc"][s] = {k: float(auroc(v[None], y[None])[0]) for k, y in labels.items()}
        rhos = {}
        for c in NORMAL:
            sel = (cat["class"] == c).to_numpy() & np.isfinite(v)
            for cov in COVARIATES:
                rhos[f"{c} {cov}"] = float(spearmanr(v[sel], cat[cov].to_numpy()[sel]).statistic)
        out["rho"][s] = rhos
        order = np.argsort(-np.nan_to_num(v, nan=-np.inf), kind="stable")
        out["top1"][s] = float(anomalous[order[:n_top]].mean())
    finite = np.isfinite(np.column_stack(list(values.values()))).all(axis=1)
    matrix = np.column_stack([values[s][finite] for s in scores])
    for label in ("is_agn", *sorted(set(cat["class"]) - set(NORMAL))):
        diff, lo, hi = paired_auroc_differences(matrix, labels[label][finite], n_boot, seed)
        out["paired"][label] = {
            f"{a} - {b}": (float(diff[i, j]), float(lo[i, j]), float(hi[i, j]))
            for i, a in enumerate(scores) for j, b in enumerate(scores)
            if a not in BASELINES and b in BASELINES
        }
    purities = []
    for _, part in cat.groupby("fold"):
        table = bpt_purity(np.stack(part["mu"].to_numpy()), part["bpt_class"].astype(str).to_numpy(), 10)
        purities.append(table.set_index("bpt_class")[["n", "purity"]])
    joined = pd.concat(purities).groupby(level=0).apply(
        lambda t: float((t["purity"] * t["n"]).sum() / t["n"].sum()))
    out["purity"] = {k: float(v) for k, v in joined.items()}
    return out


COVARIATES = ("noise_floor", "coverage")  # the galaxy properties a score must not track


def covariates_by_plateifu(store_path: Path) -> pd.DataFrame:
    """Noise floor and coverage (spaxels covered, i.e. IFU size) of every store galaxy."""
    from linecube.analysis.evaluate import noise_and_coverage
    from linecube.store import Store

    store = Store.open(store_path)
    return pd.DataFrame(noise_and_coverage(store),
                        index=store.catalogue["plateifu"].astype(str))


def pixel_table(store_path: Path, truth_maps: Path, analyses: list[Path]) -> pd.DataFrame:
    """Pixel AUROC of the held-out galaxies' anomaly maps, pooled over the fold models."""
    from linecube.analysis.layout import AnalysisDir
    from linecube.analysis.pixel import pixel_auroc, read_anomaly_maps, store_truth
    from linecube.store import Store

    anomalous, covered, kinds = store_truth(Store.open(store_path), truth_maps)
    maps = np.full(anomalous.shape, np.nan, dtype=np.float32)
    for analysis in analyses:
        held = AnalysisDir(analysis).catalogue()["split"].to_numpy() == "holdout"
        maps[held] = read_anomaly_maps(analysis)[held]
    return pixel_auroc(maps, anomalous, covered, kinds)


def cell(values: list[float]) -> str:
    """mean [min, max] of the seeds' values."""
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.2f} [{v.min():.2f}, {v.max():.2f}]"


def summarise(per_seed: list[dict], scores: list[str], names: dict[str, str],
              ratio_normal: list[str]) -> str:
    """Markdown tables: mean [min, max] over seeds."""
    labels = list(per_seed[0]["auroc"][scores[0]])
    lines = []
    for title, group in (("AUROC", [x for x in labels if x not in ratio_normal]),
                         ("AUROC of the ratio-normal classes", ratio_normal)):
        if not group:
            continue
        lines += [f"{title}, mean [min, max] over seeds:", "",
                  "| label | " + " | ".join(names.get(s, s) for s in scores) + " |",
                  "|---" * (len(scores) + 1) + "|"]
        for label in group:
            lines.append(f"| {label} | " + " | ".join(
                cell([m["auroc"][s][label] for m in per_seed]) for s in scores) + " |")
        lines.append("")
    lines += ["Spearman rho with the noise floor and with the coverage (IFU size) inside the "
              "normal classes (SF / retired), top 1 % anomalous fraction:", "",
              "| score | rho floor SF | rho floor retired | rho coverage SF | "
              "rho coverage retired | top 1 % |", "|---|---|---|---|---|---|"]
    for s in scores:
        lines.append(f"| {names.get(s, s)} | " + " | ".join([
            cell([m["rho"][s][f"{c} {cov}"] for m in per_seed])
            for cov in COVARIATES for c in NORMAL] + [
            cell([m["top1"][s] for m in per_seed])]) + " |")
    lines += ["", "Paired bootstrap of AUROC differences against the baselines (95 % interval per "
              "seed; 'beats' only when every seed's interval excludes 0):", "",
              "| label | comparison | difference per seed [interval] | verdict |", "|---|---|---|---|"]
    for label in per_seed[0]["paired"]:
        for pair in per_seed[0]["paired"][label]:
            trio = [m["paired"][label][pair] for m in per_seed]
            text = "; ".join(f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]" for d, lo, hi in trio)
            a, b = pair.split(" - ")
            if all(lo > 0 for _, lo, _ in trio):
                verdict = f"{names.get(a, a)} beats {names.get(b, b)}"
            elif all(hi < 0 for _, _, hi in trio):
                verdict = f"{names.get(b, b)} beats {names.get(a, a)}"
            else:
                verdict = "not shown"
            lines.append(f"| {label} | {names.get(a, a)} - {names.get(b, b)} | {text} | {verdict} |")
    classes = sorted(per_seed[0]["purity"])
    lines += ["", "BPT purity of k = 10 latent neighbours:", "",
              "| " + " | ".join(classes) + " |", "|---" * len(classes) + "|",
              "| " + " | ".join(cell([m["purity"][c] for m in per_seed]) for c in classes) + " |"]
    if "pixel" in per_seed[0]:
        lines += ["", "Pixel AUROC of `anomaly_maps.zarr` (held-out galaxies, each kind with the "
                  "normal galaxies):", "", "| kind | pixel AUROC |", "|---|---|"]
        for kind in per_seed[0]["pixel"]:
            lines.append(f"| {kind} | {cell([m['pixel'][kind] for m in per_seed])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/linecube-science"))
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--survey-seed", type=int, default=0, help="seed of the simulated survey")
    parser.add_argument("--size", type=int, default=32, help="map size of the store")
    parser.add_argument("--pixel-scale", type=float, default=1.0,
                        help="arcsec per pixel (1.0 = 2x2 binning, keeps the whole IFU at 32)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="training seeds (each cross-fits two fold models)")
    parser.add_argument("--preset", default="default", help="training preset or config file")
    parser.add_argument("-o", "--override", action="append",
                        help="training setting KEY=VALUE (repeatable), e.g. loss.ivar_weighting=true")
    parser.add_argument("--residual", choices=["shape", "flux"], default="shape",
                        help="what the calibrated scores measure (linecube embed --residual)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--max-train-minutes", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    sim, store = out / "sim", out / "store"

    from linecube.analysis.bpt import run_bpt
    from linecube.preprocess import PreprocessConfig
    from linecube.simulate.survey import simulate_survey
    from linecube.store.ingest import ingest

    if step(f"simulate {args.n} galaxies", (sim / "truth.parquet").is_file()):
        print(" ", simulate_survey(sim, args.n, seed=args.survey_seed, workers=args.workers))
    if step("ingest", (store / "store.json").is_file()):
        print(" ", ingest([sim / "maps"], store, PreprocessConfig(size=args.size,
                                                                   pixel_scale=args.pixel_scale),
                          workers=args.workers, progress=False))
    truth = pd.read_parquet(sim / "truth.parquet").drop_duplicates("plateifu").set_index("plateifu")
    covariates = covariates_by_plateifu(store)
    per_seed, bpt = [], None
    for seed in args.seeds:
        parts, analyses = [], []
        for fold in (0, 1):
            model = train_fold(store, out / f"run_s{seed}_f{fold}", seed, fold, args)
            analysis = out / f"analysis_s{seed}_f{fold}"
            part = held_out_scores(store, model, analysis, 16, seed, args.residual)
            if bpt is None:
                if step("bpt", "bpt_class" in pd.read_parquet(analysis / "catalogue.parquet")):
                    run_bpt(analysis, progress=False)
                bpt = pd.read_parquet(analysis / "catalogue.parquet").set_index("plateifu")["bpt_class"]
            part["fold"] = fold
            parts.append(part)
            analyses.append(analysis)
        cat = pd.concat(parts).sort_values("row").reset_index(drop=True)
        cat["headline"] = -cat["rank"].to_numpy(dtype=np.float64)
        key = cat["plateifu"].astype(str)
        cat["class"] = key.map(truth["class"]).to_numpy()
        cat["is_agn"] = key.map(truth["is_agn"]).astype(bool).to_numpy()
        for cov in COVARIATES:
            cat[cov] = key.map(covariates[cov]).to_numpy()
        cat["bpt_class"] = key.map(bpt).to_numpy()
        scores = ["headline"] + [
            c for c in cat.columns
            if c.startswith("score_") and not c.startswith(("score_recon_", "score_line_"))
            and c != "score_combined"
        ]
        cat.drop(columns=["mu"]).to_parquet(out / f"crossfit_s{seed}.parquet")
        step(f"metrics seed {seed}", False)
        per_seed.append(seed_metrics(cat, scores, args.n_bootstrap, seed))
        if (sim / "truth_maps.fits").is_file():
            pixel = pixel_table(store, sim / "truth_maps.fits", analyses)
            per_seed[-1]["pixel"] = dict(zip(pixel["kind"], pixel["pixel_auroc"], strict=True))
    (out / "science_check.json").write_text(json.dumps(per_seed, indent=1))
    names = {"score_ratio_iforest": "line-ratio iForest", "score_pca": "PCA recon"}
    ratio_normal = []
    if "ratio_normal" in truth:
        share = truth[~truth["class"].isin(NORMAL)].groupby("class")["ratio_normal"].mean()
        ratio_normal = sorted(share.index[share >= 0.5])
    print()
    print(summarise(per_seed, scores, names, ratio_normal))


if __name__ == "__main__":
    main()
