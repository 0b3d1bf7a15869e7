"""Ratio-normal check: are the simulator's rare spatial kinds invisible to integrated ratios?

Simulates a survey, ingests it as the science check does (32x32, 1 arcsec pixels), scores every
galaxy with the line-ratio isolation forest (``baselines.ratio_iforest_scores``: integrated
line ratios of the store's maps) and reports, for every class of the truth table, the AUROC of
that class against the normal classes (star-forming + retired), and against the normal
galaxies of its own host class only, with bootstrap intervals. The target of issue #15:
AUROC <= 0.65 on each ratio-normal kind. Steps whose output exists are skipped, so a run
resumes; the scores are kept in ``OUT/ratio_iforest.parquet``.

With ``--pixel`` it also scores per-spaxel maps of a simple ratio baseline (how far each
spaxel lies above the Kauffmann et al. 2003 line in the [NII] BPT diagram) against the
survey's truth maps (``linecube.analysis.pixel``): pixel AUROC overall and per kind. This
exercises the truth-map geometry on a real store and shows which kinds per-spaxel ratios can
find.

Usage:
    python benchmarks/ratio_normal_check.py --out /tmp/ratio_normal --n 2000 --seed 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

NORMAL = ("star_forming", "retired")


def build_store(out: Path, n: int, seed: int, workers: int, size: int, pixel_scale: float):
    """Simulate and ingest (each skipped when done); returns the opened store."""
    from linecube.preprocess import PreprocessConfig
    from linecube.simulate.survey import simulate_survey
    from linecube.store import Store
    from linecube.store.ingest import ingest

    survey, store = out / "survey", out / "store"
    if not (survey / "truth.parquet").is_file():
        print(simulate_survey(survey, n, seed=seed, workers=workers), flush=True)
    if not (store / "store.json").is_file():
        print(ingest([survey / "maps"], store, PreprocessConfig(size=size,
                                                                 pixel_scale=pixel_scale),
                     workers=workers, progress=False), flush=True)
    return Store.open(store)


def per_class_auroc(scores: np.ndarray, truth: pd.DataFrame, n_boot: int,
                    seed: int) -> pd.DataFrame:
    """AUROC of each non-normal class (and of its ratio-normal members) against the normal
    classes and against the normal galaxies of its members' host classes, with 95 %
    bootstrap intervals."""
    from linecube.analysis.metrics import bootstrap
    from linecube.simulate.config import RARE_KINDS

    normal = truth["class"].isin(NORMAL).to_numpy()
    groups = [(cls, truth["class"].eq(cls).to_numpy())
              for cls in sorted(set(truth["class"]) - set(NORMAL))]
    groups.append(("all rare kinds", truth["class"].isin(RARE_KINDS).to_numpy()))
    rows = []
    for name, members in groups:
        for subset, sel in (("all", members), ("ratio_normal", members
                                               & truth["ratio_normal"].to_numpy())):
            if not sel.any():
                continue
            hosts = normal & truth["class"].isin(set(truth["host"][sel])).to_numpy()
            row = {"class": name, "galaxies": subset, "n": int(sel.sum()),
                   "ratio_normal_share": float(truth["ratio_normal"][members].mean()),
                   "rare_kind": name in RARE_KINDS or name == "all rare kinds"}
            for key, negatives in (("auroc", normal), ("auroc_vs_host", hosts)):
                use = negatives | sel
                value, lo, hi = bootstrap(scores[use], sel[use].astype(int), 10, (0.05,),
                                          n_boot, seed)["auroc"]
                row.update({key: value, f"{key}_lo": lo, f"{key}_hi": hi})
            rows.append(row)
    return pd.DataFrame(rows)


def bpt_excess_maps(store, batch: int = 64) -> np.ndarray:
    """(N, H, W) log [OIII]/Hβ minus the Kauffmann et al. (2003) line at the spaxel's
    log [NII]/Hα (capped at x = 0); NaN where a line is invalid or not positive."""
    from linecube.analysis.physical import physical_maps

    idx = [list(store.meta.lines).index(n) for n in ("Hb-4862", "OIII-5008", "Ha-6564",
                                                     "NII-6585")]
    size = store.meta.size
    out = np.full((len(store), size, size), np.nan, np.float32)
    for start in range(0, len(store), batch):
        stop = min(start + batch, len(store))
        phys = physical_maps(store, start, stop)
        hb, o3, ha, n2 = (phys["flux"][:, i] for i in idx)
        ok = np.all(phys["valid"][:, idx], axis=1) & (hb > 0) & (o3 > 0) & (ha > 0) & (n2 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.minimum(np.log10(n2 / ha), 0.0)
            excess = np.log10(o3 / hb) - (0.61 / (x - 0.05) + 1.30)
        out[start:stop] = np.where(ok, excess, np.nan)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--pixel-scale", type=float, default=1.0)
    ap.add_argument("--n-bootstrap", type=int, default=1000)
    ap.add_argument("--pixel", action="store_true",
                    help="also the pixel AUROC of a per-spaxel BPT baseline")
    args = ap.parse_args()

    from linecube.analysis.baselines import ratio_iforest_scores

    store = build_store(args.out, args.n, args.seed, args.workers, args.size, args.pixel_scale)
    truth = pd.read_parquet(args.out / "survey" / "truth.parquet").set_index("plateifu")
    truth = truth.loc[store.catalogue["plateifu"]].reset_index()
    cached = args.out / "ratio_iforest.parquet"
    if cached.is_file():
        scores = pd.read_parquet(cached)["score_ratio_iforest"].to_numpy()
    else:
        scores = ratio_iforest_scores(store, seed=0)
        pd.DataFrame({"plateifu": truth["plateifu"], "score_ratio_iforest": scores}).to_parquet(
            cached)
    table = per_class_auroc(scores, truth, args.n_bootstrap, args.seed)
    table.to_csv(args.out / "ratio_normal_check.csv", index=False)
    fmt = "| {} | {} | {} | {:.2f} | {:.2f} [{:.2f}, {:.2f}] | {:.2f} [{:.2f}, {:.2f}] |"
    for title, part in (("ratio-normal kinds", table[table["rare_kind"]]),
                        ("other classes", table[~table["rare_kind"]])):
        print(f"\n{title} (line-ratio iForest: the class against all star-forming and retired "
              "galaxies, and against those of its members' host classes)\n")
        print("| class | galaxies | n | ratio-normal share | AUROC vs normal [95 %] | "
              "AUROC vs its hosts [95 %] |")
        print("|---|---|---|---|---|---|")
        for r in part.itertuples():
            print(fmt.format(r[1], r.galaxies, r.n, r.ratio_normal_share, r.auroc, r.auroc_lo,
                             r.auroc_hi, r.auroc_vs_host, r.auroc_vs_host_lo,
                             r.auroc_vs_host_hi))
    if args.pixel:
        from linecube.analysis.pixel import pixel_auroc, store_truth

        anomalous, covered, kinds = store_truth(store, args.out / "survey" / "truth_maps.fits")
        pixel = pixel_auroc(bpt_excess_maps(store), anomalous, covered, kinds)
        pixel.to_csv(args.out / "pixel_bpt_baseline.csv", index=False)
        print("\nper-spaxel BPT excess against the truth maps\n")
        print(pixel.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
