"""Science check: which anomaly method finds which simulated galaxy class?

Simulates a survey (default 2,000 galaxies), ingests it, trains a ConvLSTM autoencoder and the
2-D conv autoencoder baseline with the same training machinery, embeds and scores both, and
evaluates every score plus the PCA and line-ratio isolation-forest baselines against each class
of the truth table (one class against the rest) and against ``is_agn``. Every step is skipped
when its output exists, so an interrupted run resumes.

Writes ``OUT/science_check.csv`` (all metrics) and prints a markdown table of AUROC per class
and method with the winner of each class.

Usage:
    python benchmarks/science_check.py --out /tmp/science --n 2000 --size 32 --epochs 8
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

METHODS = {  # evaluated score column -> name in the table
    "score_recon": "ConvLSTM recon",
    "score_iforest": "ConvLSTM latent iForest",
    "score_knn": "ConvLSTM latent kNN",
    "score_lof": "ConvLSTM latent LOF",
    "score_combined": "ConvLSTM combined",
    "conv2d:score_recon": "conv2d AE recon",
    "conv2d:score_combined": "conv2d AE combined",
    "score_pca": "PCA recon",
    "score_ratio_iforest": "line-ratio iForest",
}


def step(name: str, done: bool):
    """Print a step header; return whether to run it."""
    print(f"[{time.strftime('%H:%M:%S')}] {name}{' (done, skipped)' if done else ''}", flush=True)
    return not done


def train_model(store: Path, run_dir: Path, kind: str, args) -> Path:
    from linecube.models.config import ModelConfig
    from linecube.training.config import TrainConfig
    from linecube.training.train import train

    model_path = run_dir / "model.safetensors"
    if step(f"train {kind}", model_path.is_file()):
        model = ModelConfig(kind=kind, stem_channels=4, hidden=[8, 16], latent_dim=args.latent_dim,
                            fuse_gates=kind != "conv2d")
        cfg = TrainConfig.model_validate(
            {
                "model": model.model_dump(),
                "data": {"batch_size": 32, "seed": args.seed, "in_memory": True},
                "loss": {"kind": "l1"},
                "trainer": {
                    "max_epochs": args.epochs,
                    "max_time_minutes": args.max_train_minutes,
                    "seed": args.seed,
                    "progress_bar": False,
                    "early_stopping_patience": None,
                },
            }
        )
        result = train(store, cfg, run_dir)
        print(f"  {kind}: {result.epochs} epochs, best val loss {result.best_val_loss:.4f}")
    return model_path


def analyse(store: Path, model_path: Path, out: Path) -> None:
    from linecube.analysis.embed import EmbedConfig, embed
    from linecube.analysis.scores import score
    from linecube.store import Store
    from linecube.training.modelfile import load_model

    if step(
        f"embed + score {out.name}",
        (out / "catalogue.parquet").is_file()
        and "score_combined" in pd.read_parquet(out / "catalogue.parquet"),
    ):
        loaded = load_model(model_path)
        embed(
            loaded.model,
            Store.open(store),
            out,
            EmbedConfig(batch_size=64),
            model_path=model_path,
            model_store_meta=loaded.store_meta,
            progress=False,
        )
        score(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/linecube-science"))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", type=int, default=32, help="map size of the store")
    parser.add_argument(
        "--pixel-scale",
        type=float,
        default=1.0,
        help="arcsec per pixel (1.0 = 2x2 binning, keeps the whole IFU at 32)",
    )
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--max-train-minutes", type=float, default=12.0)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-bootstrap", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    sim, store = out / "sim", out / "store"

    from linecube.analysis.bpt import run_bpt
    from linecube.analysis.evaluate import EvaluateConfig, evaluate
    from linecube.preprocess import PreprocessConfig
    from linecube.simulate.survey import simulate_survey
    from linecube.store.ingest import ingest

    if step(f"simulate {args.n} galaxies", (sim / "truth.parquet").is_file()):
        print(" ", simulate_survey(sim, args.n, seed=args.seed, workers=args.workers))
    if step("ingest", (store / "store.json").is_file()):
        report = ingest(
            [sim / "maps"],
            store,
            PreprocessConfig(size=args.size, pixel_scale=args.pixel_scale),
            workers=args.workers,
            progress=False,
        )
        print(" ", report)
    convlstm = train_model(store, out / "run_convlstm", "ae", args)
    conv2d = train_model(store, out / "run_conv2d", "conv2d", args)
    analyse(store, convlstm, out / "analysis")
    analyse(store, conv2d, out / "analysis_conv2d")
    if step("bpt", "bpt_class" in pd.read_parquet(out / "analysis" / "catalogue.parquet")):
        run_bpt(out / "analysis", progress=False)

    step("evaluate", False)
    common = dict(
        compare=["pca", "ratio_iforest", f"conv2d={out / 'analysis_conv2d'}"],
        scores=["score_recon", "score_iforest", "score_knn", "score_lof", "score_combined"],
        n_bootstrap=args.n_bootstrap,
        seed=args.seed,
        top_k=20,
    )
    per_class = evaluate(
        out / "analysis",
        sim / "truth.parquet",
        EvaluateConfig(label_column="class", per_class=True, **common),
    )["metrics"]
    agn = evaluate(
        out / "analysis", sim / "truth.parquet", EvaluateConfig(label_column="is_agn", **common)
    )["metrics"]
    agn["label"] = "is_agn"
    metrics = pd.concat([per_class, agn], ignore_index=True)
    metrics = metrics[metrics["score"].isin(METHODS)]
    metrics.to_csv(out / "science_check.csv", index=False)

    table = metrics.pivot(index="label", columns="score", values="auroc")[list(METHODS)]
    table.columns = [METHODS[c] for c in table.columns]
    npos = metrics.groupby("label")["n_positive"].first()
    print("\n| class (N) | " + " | ".join(table.columns) + " | winner |")
    print("|---" * (len(table.columns) + 2) + "|")
    for label, row in table.iterrows():
        best = row.idxmax()
        cells = [f"**{v:.2f}**" if name == best else f"{v:.2f}" for name, v in row.items()]
        print(f"| {label} ({npos[label]}) | " + " | ".join(cells) + f" | {best} |")


if __name__ == "__main__":
    main()
