"""The whole pipeline on the built-in simulated survey, in a few minutes on a laptop CPU.

simulate -> ingest -> train (``demo`` preset) -> embed -> score -> umap -> bpt -> evaluate
(against the simulated truth table and AGN catalogue) -> HTML report and explorer page.
Every step is the same Python function the ``linecube`` verbs call; the demo only chains them.
A step whose outputs already exist is resumed or skipped, so an interrupted demo can be rerun.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class DemoResult:
    """Where the demo wrote its products."""

    out: Path
    report: Path
    explorer: Path
    top: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)


def _step(name: str, timings: dict[str, float], echo):
    """Context helper: announce a step and record its wall time."""

    class _Timer:
        def __enter__(self):
            echo(f"[demo] {name} ...")
            self.start = time.perf_counter()

        def __exit__(self, *exc):
            timings[name] = time.perf_counter() - self.start
            if exc[0] is None:
                echo(f"[demo] {name}: done in {timings[name]:.1f} s")

    return _Timer()


def _echo_agn(agn: dict, echo) -> None:
    """Print the AUROC of the simulated AGN under the headline ranking and the line-ratio
    baseline, and the paired verdict between them."""
    metrics = agn["metrics"].set_index("score")
    echo(f"Simulated AGN (truth is_agn; {agn['notes'][0]}), AUROC with 95 % interval "
         "(0.5 = chance):")
    for name in ("headline", "score_ratio_iforest"):
        row = metrics.loc[name]
        echo(f"  {name:<22} {row.auroc:.2f} [{row.auroc_lo:.2f}, {row.auroc_hi:.2f}]")
    pairs = agn["comparisons"]
    pair = pairs[(pairs.score_a == "headline") & (pairs.score_b == "score_ratio_iforest")]
    if len(pair):
        echo(f"  paired bootstrap: {pair.verdict.iloc[0]}")


def run_demo(out: str | Path = "linecube-demo", n: int = 300, seed: int = 0,
             workers: int | None = None, top: int = 10, epochs: int | None = None,
             echo=print) -> DemoResult:
    """Run the pipeline end to end on a simulated survey of ``n`` galaxies in ``out``.

    Args:
        out: output directory (survey/, store/, run/, analysis/, report/, explorer/).
        n: simulated observations.
        seed: seed of the survey and of the training run.
        workers: processes for simulation and ingest (default: all cores).
        top: anomalies printed at the end.
        epochs: training epochs (default: the ``demo`` preset's).
        echo: where progress lines go.
    """
    import os

    from astropy.table import Table

    from linecube.analysis.bpt import run_bpt
    from linecube.analysis.embed import EmbedConfig, embed
    from linecube.analysis.evaluate import EvaluateConfig, evaluate
    from linecube.analysis.scores import score
    from linecube.analysis.umap import run_umap
    from linecube.preprocess import PreprocessConfig
    from linecube.simulate.survey import simulate_survey
    from linecube.store import Store
    from linecube.store.ingest import ingest
    from linecube.training.config import load_train_config
    from linecube.training.modelfile import load_model
    from linecube.training.train import train
    from linecube.viz.explore import build_explorer
    from linecube.viz.report import build_report

    out = Path(out)
    workers = workers or os.cpu_count() or 1
    timings: dict[str, float] = {}
    survey, store_dir, run_dir = out / "survey", out / "store", out / "run"
    adir, report_dir, explorer_dir = out / "analysis", out / "report", out / "explorer"

    with _step(f"simulate {n} galaxies", timings, echo):
        simulate_survey(survey, n=n, seed=seed, workers=workers, progress=True)
    with _step("ingest", timings, echo):
        ingest([survey / "maps"], store_dir, PreprocessConfig(), workers=workers, progress=True)
    store = Store.open(store_dir)
    with _step("train (demo preset)", timings, echo):
        model_file = run_dir / "model.safetensors"
        if not model_file.exists():
            overrides = {"trainer.seed": seed, "data.seed": seed}
            if epochs is not None:
                overrides["trainer.max_epochs"] = epochs
            config = load_train_config("demo", overrides)
            resume = (run_dir / "checkpoints" / "last.ckpt").exists()
            train(store_dir, None if resume else config, run_dir, resume=resume)
    with _step("embed", timings, echo):
        loaded = load_model(model_file)
        embed(loaded.model, store, adir, EmbedConfig(save_recon=True), model_path=model_file,
              model_store_meta=loaded.store_meta, progress=True)
    with _step("score", timings, echo):
        score(adir)
    with _step("umap", timings, echo):
        run_umap(adir)
    with _step("bpt", timings, echo):
        run_bpt(adir, store, progress=True)
    with _step("evaluate against the simulated AGN catalogue and truth", timings, echo):
        evaluation = adir / "evaluation"
        if len(Table.read(survey / "agn_catalogue.fits")):
            evaluate(adir, survey / "agn_catalogue.fits", EvaluateConfig(), store=store)
            os.replace(evaluation / "metrics.csv", evaluation / "metrics_agn_catalogue.csv")
        else:
            echo("[demo] the simulated AGN catalogue lists no galaxy at this survey size: "
                 "its evaluation is skipped")
        agn = evaluate(adir, survey / "truth.parquet", EvaluateConfig(
            label_column="is_agn", compare=["ratio_iforest"], purity_k=0, seed=seed), store=store)
        for name in ("metrics", "comparisons"):
            os.replace(evaluation / f"{name}.csv", evaluation / f"{name}_is_agn.csv")
        per_class = evaluate(adir, survey / "truth.parquet", EvaluateConfig(
            label_column="class", per_class=True, compare=["pca", "ratio_iforest"], seed=seed,
            pixel_truth=str(survey / "truth_maps.fits")), store=store)
    with _step("report", timings, echo):
        report = build_report(adir, report_dir, labels=survey / "truth.parquet")
    with _step("explorer", timings, echo):
        explorer = build_explorer(adir, explorer_dir, labels=survey / "truth.parquet")

    catalogue = pd.read_parquet(adir / "catalogue.parquet")
    truth = pd.read_parquet(survey / "truth.parquet")[["plateifu", "class"]]
    best = catalogue.sort_values("rank").head(top)
    best = best.merge(truth, on="plateifu", how="left")
    shown = best[["rank", "plateifu", "score_combined", "score_resid_peak", "score_recon", "class"]]
    echo("")
    echo(f"Top {top} anomalies (simulated class shown for reference):")
    echo(shown.to_string(index=False))
    echo("")
    _echo_agn(agn, echo)
    pixel = per_class["pixel"].set_index("kind")["pixel_auroc"]
    echo(f"Per-spaxel anomaly maps against the simulated truth maps: pixel AUROC {pixel['all']:.2f} "
         "(per kind in analysis/evaluation/pixel_metrics.csv)")
    echo("Best score per simulated class (AUROC), the ConvLSTM against the baselines:")
    metrics = per_class["metrics"]
    best_rows = metrics.loc[metrics.groupby("label")["auroc"].idxmax()]
    for row in best_rows.itertuples():
        echo(f"  {row.label:<14} {row.score:<22} {row.auroc:.2f}")
    echo("")
    echo(f"report:   {report}")
    echo(f"explorer: {explorer}")
    echo(f"total {sum(timings.values()):.0f} s")
    return DemoResult(out=out, report=Path(report), explorer=Path(explorer), top=shown,
                      timings=timings)
