"""The whole pipeline on the built-in simulated survey, in a few minutes on a laptop CPU.

simulate -> ingest -> train (``demo`` preset) -> embed -> score -> umap -> bpt -> evaluate
(against the simulated truth table and AGN catalogue) -> HTML report and explorer page.
Every step is the same Python function the ``linecube`` verbs call; the demo only chains them.
A step whose outputs already exist is resumed or skipped, so an interrupted demo can be rerun.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
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


class _Demo:
    """The directories of a demo run, its seed and echo, and the wall time of every step.

    Args:
        out: output directory (survey/, store/, run/, analysis/, report/, explorer/).
        seed: seed of the survey and of the training run.
        echo: where progress lines go.
    """

    def __init__(self, out: Path, seed: int, echo):
        self.out, self.seed, self.echo = out, seed, echo
        self.survey, self.store, self.run = out / "survey", out / "store", out / "run"
        self.analysis, self.report, self.explorer = (
            out / "analysis", out / "report", out / "explorer")
        self.timings: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        """Announce a step and record its wall time."""
        self.echo(f"[demo] {name} ...")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - start
        self.echo(f"[demo] {name}: done in {self.timings[name]:.1f} s")


def run_demo(out: str | Path = "linecube-demo", *, n: int = 300, seed: int = 0,
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

    from linecube.viz.explore import build_explorer
    from linecube.viz.report import build_report

    demo = _Demo(Path(out), seed, echo)
    model_file = _train_on_simulated_survey(demo, n, workers or os.cpu_count() or 1, epochs)
    agn, per_class = _analyse(demo, model_file)
    with demo.step("report"):
        report = build_report(demo.analysis, demo.report, labels=demo.survey / "truth.parquet")
    with demo.step("explorer"):
        explorer = build_explorer(demo.analysis, demo.explorer,
                                  labels=demo.survey / "truth.parquet")
    shown = _echo_top(demo, top)
    _echo_agn(agn, echo)
    _echo_per_class(per_class, echo)
    echo("")
    echo(f"report:   {report}")
    echo(f"explorer: {explorer}")
    echo(f"total {sum(demo.timings.values()):.0f} s")
    return DemoResult(out=demo.out, report=Path(report), explorer=Path(explorer), top=shown,
                      timings=demo.timings)


def _train_on_simulated_survey(demo: _Demo, n: int, workers: int, epochs: int | None) -> Path:
    """Simulate ``n`` galaxies, ingest them and train the ``demo`` preset (unless its model
    file exists; an interrupted run is resumed); returns the model file."""
    from linecube.preprocess import PreprocessConfig
    from linecube.simulate.survey import simulate_survey
    from linecube.store.ingest import ingest
    from linecube.training.config import load_train_config
    from linecube.training.train import train

    with demo.step(f"simulate {n} galaxies"):
        simulate_survey(demo.survey, n=n, seed=demo.seed, workers=workers, progress=True)
    with demo.step("ingest"):
        ingest([demo.survey / "maps"], demo.store, PreprocessConfig(), workers=workers,
               progress=True)
    model_file = demo.run / "model.safetensors"
    with demo.step("train (demo preset)"):
        if not model_file.exists():
            overrides = {"trainer.seed": demo.seed, "data.seed": demo.seed}
            if epochs is not None:
                overrides["trainer.max_epochs"] = epochs
            config = load_train_config("demo", overrides)
            resume = (demo.run / "checkpoints" / "last.ckpt").exists()
            train(demo.store, None if resume else config, demo.run, resume=resume)
    return model_file


def _analyse(demo: _Demo, model_file: Path) -> tuple[dict, dict]:
    """Embed, score, UMAP, BPT and evaluate; returns the evaluations against the simulated
    ``is_agn`` truth and against the simulated classes."""
    from linecube.analysis.bpt import run_bpt
    from linecube.analysis.embed import EmbedConfig, embed
    from linecube.analysis.scores import score
    from linecube.analysis.umap import run_umap
    from linecube.store import Store
    from linecube.training.modelfile import load_model

    store = Store.open(demo.store)
    with demo.step("embed"):
        loaded = load_model(model_file)
        embed(loaded.model, store, demo.analysis, EmbedConfig(save_recon=True),
              model_path=model_file, model_store_meta=loaded.store_meta, progress=True)
    with demo.step("score"):
        score(demo.analysis)
    with demo.step("umap"):
        run_umap(demo.analysis)
    with demo.step("bpt"):
        run_bpt(demo.analysis, store, progress=True)
    with demo.step("evaluate against the simulated AGN catalogue and truth"):
        return _evaluate_against_truth(demo, store)


def _evaluate_against_truth(demo: _Demo, store) -> tuple[dict, dict]:
    """Evaluate against the simulated AGN catalogue (when it lists galaxies), the ``is_agn``
    truth (against the line-ratio baseline) and every simulated class (with the baselines
    and the per-spaxel truth maps); the first two keep their tables under their own names."""
    import os

    from astropy.table import Table

    from linecube.analysis.evaluate import EvaluateConfig, evaluate

    adir, survey, seed = demo.analysis, demo.survey, demo.seed
    evaluation = adir / "evaluation"
    if len(Table.read(survey / "agn_catalogue.fits")):
        evaluate(adir, survey / "agn_catalogue.fits", EvaluateConfig(), store=store)
        os.replace(evaluation / "metrics.csv", evaluation / "metrics_agn_catalogue.csv")
    else:
        demo.echo("[demo] the simulated AGN catalogue lists no galaxy at this survey size: "
                  "its evaluation is skipped")
    agn = evaluate(adir, survey / "truth.parquet", EvaluateConfig(
        label_column="is_agn", compare=["ratio_iforest"], purity_k=0, seed=seed), store=store)
    for name in ("metrics", "comparisons"):
        os.replace(evaluation / f"{name}.csv", evaluation / f"{name}_is_agn.csv")
    per_class = evaluate(adir, survey / "truth.parquet", EvaluateConfig(
        label_column="class", per_class=True, compare=["pca", "ratio_iforest"], seed=seed,
        pixel_truth=str(survey / "truth_maps.fits")), store=store)
    return agn, per_class


def _echo_top(demo: _Demo, top: int) -> pd.DataFrame:
    """Print the ``top`` anomalies with their simulated class; returns the printed table."""
    catalogue = pd.read_parquet(demo.analysis / "catalogue.parquet")
    truth = pd.read_parquet(demo.survey / "truth.parquet")[["plateifu", "class"]]
    best = catalogue.sort_values("rank").head(top)
    best = best.merge(truth, on="plateifu", how="left")
    shown = best[["rank", "plateifu", "score_combined", "score_resid_contrast", "score_resid_mean",
                  "class"]]
    demo.echo("")
    demo.echo(f"Top {top} anomalies (simulated class shown for reference):")
    demo.echo(shown.to_string(index=False))
    demo.echo("")
    return shown


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


def _echo_per_class(per_class: dict, echo) -> None:
    """Print the pixel AUROC of the anomaly maps and the best score of every simulated class."""
    pixel = per_class["pixel"].set_index("kind")["pixel_auroc"]
    echo(f"Per-spaxel anomaly maps against the simulated truth maps: pixel AUROC {pixel['all']:.2f} "
         "(per kind in analysis/evaluation/pixel_metrics.csv)")
    echo("Best score per simulated class (AUROC), the ConvLSTM against the baselines:")
    metrics = per_class["metrics"]
    best_rows = metrics.loc[metrics.groupby("label")["auroc"].idxmax()]
    for row in best_rows.itertuples():
        echo(f"  {row.label:<14} {row.score:<22} {row.auroc:.2f}")
