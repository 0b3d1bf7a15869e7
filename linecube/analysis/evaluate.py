"""How labelled populations (e.g. AGN) score: ranking metrics with bootstrap intervals,
paired comparisons, baselines on the same data, and nearest-neighbour BPT purity.

Galaxies are evaluated out of sample by default: when the catalogue's ``split`` column (from
embed) shows galaxies the network never trained on (``holdout`` or ``unseen``), only those
are evaluated and the baselines are fitted on the network's training galaxies. The headline
ranking enters as ``headline`` (= -``rank``).

Writes ``ANALYSIS_DIR/evaluation/``: ``metrics.csv`` (one row per score, with intervals),
``comparisons.csv`` (paired bootstrap of every AUROC difference, with its verdict),
``noise_dependence.csv`` (Spearman correlation of every score with the noise floor and with
the coverage inside each normal class, when ``per_class``), ``purity.csv``, ``baseline_scores.parquet`` (when
baselines ran), ``roc.png``, ``pr.png`` and ``percentiles.png``. The catalogue is changed
only with ``add_columns``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from linecube.analysis.labels import find_column, label_vector, match_labels, read_table
from linecube.analysis.layout import AnalysisDir
from linecube.analysis.metrics import bootstrap, paired_auroc_differences, verdict
from linecube.atomic import atomic_path, atomic_write_parquet
from linecube.config import StrictModel
from linecube.errors import ConfigError, InputFileError

BASELINES = ("pca", "ratio_iforest")
PER_LINE_PREFIXES = ("score_recon_", "score_line_")
OUT_OF_SAMPLE = ("holdout", "unseen")
HEADLINE = "headline"


class EvaluateConfig(StrictModel):
    """Settings of ``linecube evaluate``."""

    label_column: str | None = Field(
        None, description="label column of the table (default: is_agn, else any AGN VAC flag: "
        "WISE_AGN, BAT_AGN, RADIO_AGN, BROAD_AGN)")
    positive: str | None = Field(
        None, description="for a text label column, the value marking the class (e.g. seyfert)")
    per_class: bool = Field(
        False, description="evaluate every distinct value of the label column as its own class")
    unmatched: Literal["auto", "negative", "drop"] = Field(
        "auto", description="catalogue galaxies missing from the table: negative, drop, or "
        "auto (negative when the table lists positives only, else drop)")
    scores: list[str] | None = Field(
        None, description="score columns to evaluate (default: every score_* except the "
        "per-line ones)")
    compare: list[str] = Field(
        default_factory=list, description="baselines (pca, ratio_iforest) and/or other "
        "analysis directories or catalogues, as PATH or NAME=PATH (e.g. the 2-D conv "
        "autoencoder's)")
    top_k: int = Field(50, gt=0, description="k of precision at k")
    fractions: list[float] = Field(
        default_factory=lambda: [0.01, 0.05, 0.10],
        description="top fractions for the recall columns")
    n_bootstrap: int = Field(
        1000, ge=0, description="bootstrap draws for the 95 % intervals (0: none)")
    purity_k: int = Field(10, ge=0, description="neighbours for the BPT purity (0: skip)")
    pca_components: int | None = Field(
        None, description="components of the PCA baseline (default: the latent dimension)")
    add_columns: bool = Field(False, description="also write the baseline scores into the catalogue")
    sample: Literal["auto", "out_of_sample", "all"] = Field(
        "auto", description="galaxies evaluated: out_of_sample (those the network did not "
        "train on: split holdout or unseen), all, or auto (the first when the catalogue has "
        "such galaxies, else every galaxy, noted as in-sample)")
    normal_classes: list[str] = Field(
        default_factory=lambda: ["star_forming", "retired"],
        description="with per_class, the classes inside which every score's Spearman "
        "correlation with the noise floor is measured (a score that tracks S/N is a defect)")
    seed: int = Field(0, description="seed of the bootstrap and the baselines")
    pixel_truth: str | None = Field(
        None, description="a simulated survey's truth_maps.fits: also score the per-spaxel "
        "anomaly maps (anomaly_maps.zarr) against it (pixel AUROC overall and per kind)")


def score_columns(catalogue: pd.DataFrame) -> list[str]:
    """Whole-galaxy score columns (``score_*`` without the per-line scores)."""
    return [
        c
        for c in catalogue.columns
        if c.startswith("score_") and not c.startswith(PER_LINE_PREFIXES)
    ]


def evaluated_rows(catalogue: pd.DataFrame, sample: str) -> tuple[np.ndarray, str]:
    """Boolean mask of the galaxies to evaluate and a note saying which they are."""
    split = catalogue["split"].astype(str) if "split" in catalogue else None
    outside = np.zeros(len(catalogue), bool) if split is None else split.isin(OUT_OF_SAMPLE)
    if sample == "all" or (sample == "auto" and not outside.any()):
        note = "every galaxy (in sample: the network trained on some of them)"
        if split is not None and outside.all():
            note = "every galaxy (out of sample: the network trained on another store)"
        return np.ones(len(catalogue), bool), note
    if not outside.any():
        raise ConfigError(
            "sample=out_of_sample, but the network trained on every galaxy of this catalogue; "
            "train with data.folds > 1 to hold galaxies out"
        )
    return outside.to_numpy(), f"{int(outside.sum())} galaxies the network did not train on"


def noise_and_coverage(store) -> dict[str, np.ndarray]:
    """``noise_floor`` (N,): median over valid spaxels of all lines of 1 / sqrt(ivar), network
    units; ``coverage`` (N,): number of spaxels with any valid line, which grows with IFU size."""
    from linecube.analysis.calibrate import coverage_of, noise_floor_of

    floor, covered = np.full(len(store), np.nan), np.zeros(len(store))
    for start in range(0, len(store), 64):
        stop = min(start + 64, len(store))
        weight = store.weight[start:stop]
        floor[start:stop] = noise_floor_of(store.ivar[start:stop], weight)
        covered[start:stop] = coverage_of(weight)
    return {"noise_floor": floor, "coverage": covered}


def comparison_scores(
    adir: AnalysisDir,
    catalogue: pd.DataFrame,
    cfg: EvaluateConfig,
    store=None,
    fit_rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """Scores of the baselines and other models, aligned to ``catalogue`` rows.

    Baselines are computed on the same store and fitted on ``fit_rows`` (default: all);
    another analysis directory (or catalogue file) is matched on PLATEIFU and its columns
    are prefixed ``NAME:``.
    """
    from linecube.analysis import baselines

    out = pd.DataFrame(index=catalogue.index)
    for entry in cfg.compare:
        if entry in BASELINES:
            store = store if store is not None else adir.open_store()
            if entry == "pca":
                n_comp = cfg.pca_components or int(adir.info().get("latent_dim") or 16)
                out["score_pca"] = baselines.pca_scores(store, n_comp, fit_rows=fit_rows)
            else:
                out["score_ratio_iforest"] = baselines.ratio_iforest_scores(
                    store, seed=cfg.seed, fit_rows=fit_rows
                )
            continue
        name, _, path = entry.rpartition("=")
        path = Path(path)
        name = name or (path.stem if path.is_file() else path.name)
        other = path / "catalogue.parquet" if path.is_dir() else path
        if not other.is_file():
            raise InputFileError(
                path,
                f"compare entry {entry!r} is neither a baseline "
                f"({', '.join(BASELINES)}) nor an analysis directory or catalogue",
            )
        theirs = read_table(other)
        if "plateifu" not in theirs:
            raise InputFileError(other, "no plateifu column to match on")
        theirs = theirs.drop_duplicates("plateifu").set_index("plateifu")
        for col in score_columns(theirs):
            out[f"{name}:{col}"] = catalogue["plateifu"].map(theirs[col]).to_numpy()
    return out


def metrics_table(
    scores: pd.DataFrame, labels: np.ndarray, cfg: EvaluateConfig, label_name: str
) -> pd.DataFrame:
    """One row per score column: value and 95 % interval of every metric.

    Args:
        scores: score columns aligned with ``labels``.
        labels: 0/1 per row.
        cfg: k, fractions, bootstrap settings.
        label_name: written into the ``label`` column.
    """
    rows = []
    fractions = tuple(cfg.fractions)
    for col in scores.columns:
        value = scores[col].to_numpy(dtype=np.float64)
        ok = np.isfinite(value)
        result = bootstrap(value[ok], labels[ok], cfg.top_k, fractions, cfg.n_bootstrap, cfg.seed)
        row = {
            "label": label_name,
            "score": col,
            "n": int(ok.sum()),
            "n_positive": int(labels[ok].sum()),
        }
        for metric, (point, lo, hi) in result.items():
            row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"] = point, lo, hi
        rows.append(row)
    return pd.DataFrame(rows)


def comparisons_table(
    scores: pd.DataFrame, labels: np.ndarray, cfg: EvaluateConfig, label_name: str
) -> pd.DataFrame:
    """Every pair of scores: AUROC difference, paired 95 % interval and verdict.

    Galaxies where any score is NaN are left out, so that both scores rank the same galaxies.
    """
    values = scores.to_numpy(dtype=np.float64)
    ok = np.isfinite(values).all(axis=1)
    names = list(scores.columns)
    if labels[ok].min(initial=1) == labels[ok].max(initial=0) or len(names) < 2:
        return pd.DataFrame()
    diff, low, high = paired_auroc_differences(
        values[ok], labels[ok], cfg.n_bootstrap, cfg.seed
    )
    rows = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            rows.append(
                {
                    "label": label_name,
                    "score_a": names[a],
                    "score_b": names[b],
                    "n": int(ok.sum()),
                    "auroc_diff": diff[a, b],
                    "auroc_diff_lo": low[a, b],
                    "auroc_diff_hi": high[a, b],
                    "verdict": verdict(names[a], names[b], low[a, b], high[a, b]),
                }
            )
    return pd.DataFrame(rows)


def noise_dependence(
    scores: pd.DataFrame, covariates: dict[str, np.ndarray], classes: np.ndarray,
    normal: list[str]
) -> pd.DataFrame:
    """Spearman rho of every score with each galaxy covariate inside each normal class.

    Args:
        scores: (N, S) scores.
        covariates: name -> (N,) values, e.g. ``noise_floor`` and ``coverage``
            (:func:`noise_and_coverage`).
        classes: (N,) class of each galaxy.
        normal: the classes to look inside.

    Returns:
        One row per class and score: ``n`` and ``spearman_<covariate>`` for each covariate
        (NaN where the score or the covariate is constant inside the class).
    """
    from scipy.stats import spearmanr

    rows = []
    for name in normal:
        sel = classes == name
        if sel.sum() < 3:
            continue
        for col in scores.columns:
            value = scores[col].to_numpy(dtype=np.float64)[sel]
            row = {"class": name, "score": col, "n": int(np.isfinite(value).sum())}
            for key, cov in covariates.items():
                ok = np.isfinite(value) & np.isfinite(cov[sel])
                x, y = value[ok], cov[sel][ok]
                varies = ok.sum() > 2 and np.ptp(x) > 0 and np.ptp(y) > 0  # else undefined
                row[f"spearman_{key}"] = spearmanr(x, y).statistic if varies else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def bpt_purity(mu: np.ndarray, bpt_class: np.ndarray, k: int) -> pd.DataFrame:
    """Fraction of each galaxy's k latent neighbours sharing its BPT class, by class.

    Galaxies whose class is ``invalid`` or ``no_data`` are neither queried nor counted as
    neighbours. ``chance`` is the purity expected from random neighbours (the class fraction).
    """
    from linecube.analysis.similar import NeighbourIndex

    keep = np.flatnonzero(~np.isin(bpt_class, ["invalid", "no_data", "None", ""]))
    if len(keep) <= k:
        return pd.DataFrame(columns=["bpt_class", "n", "purity", "chance"])
    classes = bpt_class[keep]
    _, idx = NeighbourIndex(mu[keep]).query(mu[keep], k + 1)
    same = classes[idx[:, 1:]] == classes[:, None]
    fractions = {c: float((classes == c).mean()) for c in sorted(set(classes))}
    rows = [
        {
            "bpt_class": c,
            "n": int((classes == c).sum()),
            "purity": float(same[classes == c].mean()),
            "chance": f,
        }
        for c, f in fractions.items()
    ]
    rows.append(
        {
            "bpt_class": "all",
            "n": len(classes),
            "purity": float(same.mean()),
            "chance": sum(f * f for f in fractions.values()),
        }
    )
    return pd.DataFrame(rows)


def evaluate(
    out, labels_path: str | Path, cfg: EvaluateConfig | None = None, store=None
) -> dict[str, pd.DataFrame]:
    """Cross-match a label table and evaluate every score; write ``evaluation/``.

    Args:
        out: the analysis directory (``linecube score`` must have run).
        labels_path: FITS / Parquet / CSV table with PLATEIFU or MANGAID and a label column.
        cfg: label choice, comparisons and metric settings.
        store: an opened store for the baselines (default: the recorded one).

    Returns:
        ``{"metrics": ..., "comparisons": ..., "noise_dependence": ..., "purity": ...,
        "notes": [...]}`` (tables also written as CSV), and ``"pixel"`` with ``pixel_truth``.
    """
    cfg = cfg or EvaluateConfig()
    adir = AnalysisDir(out)
    cat = adir.require_columns(["score_recon"])
    table = read_table(labels_path)
    in_eval, sample_note = evaluated_rows(cat, cfg.sample)
    comparisons = comparison_scores(adir, cat, cfg, store, _baseline_fit_rows(cat, in_eval))
    scores = pd.concat(
        [_headline(cat, cfg), cat[_chosen_score_columns(cat, cfg)], comparisons], axis=1
    )
    label_sets = _label_sets(table, labels_path, cfg)
    labelled = _evaluate_label_sets(cat, table, labels_path, label_sets, scores, in_eval, cfg)
    dependence = pd.DataFrame()
    if cfg.per_class:
        labelled.metrics = add_ratio_normal(
            labelled.metrics, table, find_column(table, cfg.label_column)
        )
        store = store if store is not None else adir.open_store()
        dependence = noise_dependence(
            scores[in_eval].reset_index(drop=True),
            {k: v[in_eval] for k, v in noise_and_coverage(store).items()},
            labelled.classes[in_eval],
            cfg.normal_classes,
        )
    purity = pd.DataFrame()
    if cfg.purity_k and "bpt_class" in cat:
        mu, _ = adir.latents()
        purity = bpt_purity(mu, cat["bpt_class"].astype(str).to_numpy(), cfg.purity_k)
    notes = [f"evaluated: {sample_note}", *labelled.notes]
    result = {
        "metrics": labelled.metrics,
        "comparisons": labelled.comparisons,
        "noise_dependence": dependence,
        "purity": purity,
        "notes": notes,
    }
    _write_evaluation(adir, cat, cfg, result, comparisons)
    _plots(scores, *labelled.selections[0], adir.path / "evaluation")
    if cfg.pixel_truth:
        result["pixel"] = pixel_metrics(adir, cfg.pixel_truth, store, table)
    adir.update_info("evaluate", {**cfg.model_dump(), "labels": str(labels_path), "notes": notes})
    return result


def _baseline_fit_rows(cat: pd.DataFrame, in_eval: np.ndarray) -> np.ndarray | None:
    """Rows the baselines are fitted on: the network's training galaxies when only some
    galaxies are evaluated (out of sample), else None (all)."""
    if not in_eval.all() and "split" in cat:
        return np.flatnonzero(cat["split"].astype(str).to_numpy() == "train")
    return None


def _chosen_score_columns(cat: pd.DataFrame, cfg: EvaluateConfig) -> list[str]:
    """The catalogue score columns to evaluate; an unknown one is a ConfigError."""
    columns = cfg.scores or score_columns(cat)
    missing = [c for c in columns if c not in cat]
    if missing:
        raise ConfigError(
            f"score columns {missing} are not in the catalogue; available: {score_columns(cat)}"
        )
    return columns


def _headline(cat: pd.DataFrame, cfg: EvaluateConfig) -> pd.DataFrame:
    """The headline ranking as a score column (-``rank``), unless scores were chosen."""
    if "rank" in cat and cfg.scores is None:
        return pd.DataFrame({HEADLINE: -cat["rank"].to_numpy(dtype=np.float64)}, index=cat.index)
    return pd.DataFrame(index=cat.index)


def _label_sets(
    table: pd.DataFrame, labels_path: str | Path, cfg: EvaluateConfig
) -> list[tuple[str, np.ndarray]]:
    """``(name, label vector of the table's rows)`` per evaluated class: one per distinct
    value of the label column with ``per_class``, else the single positive rule."""
    if not cfg.per_class:
        vec, rule = label_vector(table, labels_path, cfg.label_column, cfg.positive)
        return [(rule, vec)]
    if cfg.label_column is None:
        raise ConfigError("per_class needs label_column (e.g. class)")
    column = find_column(table, cfg.label_column)
    if column is None:
        raise InputFileError(
            labels_path,
            f"label column {cfg.label_column!r} not found; the "
            f"columns are: {', '.join(map(str, table.columns))}",
        )
    values = sorted(map(str, table[column].dropna().unique()))
    return [(v, label_vector(table, labels_path, cfg.label_column, v)[0]) for v in values]


@dataclass
class _LabelledResults:
    """Metrics of every label set, in the order of the label sets."""

    metrics: pd.DataFrame  # one row per (label set, score)
    comparisons: pd.DataFrame  # one row per (label set, pair of scores)
    notes: list[str]  # how each label set was matched
    # (name, evaluated rows (N,) bool, 0/1 labels of those rows) per label set
    selections: list[tuple[str, np.ndarray, np.ndarray]]
    classes: np.ndarray  # (N,) object: the label set each galaxy is positive in ("" if none)


def _evaluate_label_sets(
    cat: pd.DataFrame,
    table: pd.DataFrame,
    labels_path: str | Path,
    label_sets: list[tuple[str, np.ndarray]],
    scores: pd.DataFrame,
    in_eval: np.ndarray,
    cfg: EvaluateConfig,
) -> _LabelledResults:
    """Match each label set to the catalogue and rank every score against it."""
    tables, pairs, notes, selections = [], [], [], []
    classes = np.full(len(cat), "", dtype=object)
    for name, vec in label_sets:
        aligned, kind = match_labels(cat, table, labels_path, vec)
        matched = aligned >= 0
        if not matched.any():
            raise InputFileError(
                labels_path, f"no galaxy of the catalogue matches the table on {kind}"
            )
        policy = unmatched_policy(cfg.unmatched, vec)
        use = (np.ones(len(cat), bool) if policy == "negative" else matched) & in_eval
        classes[aligned > 0] = name
        y = np.where(aligned > 0, 1, 0)[use]
        notes.append(
            f"{name}: matched {int(matched.sum())} of {len(cat)} galaxies on {kind}; "
            f"unmatched treated as {'negatives' if policy == 'negative' else 'dropped'}; "
            f"{int(y.sum())} positives among {int(use.sum())} evaluated"
        )
        part = scores[use].reset_index(drop=True)
        tables.append(metrics_table(part, y, cfg, name))
        pairs.append(comparisons_table(part, y, cfg, name))
        selections.append((name, use, y))
    return _LabelledResults(
        metrics=pd.concat(tables, ignore_index=True),
        comparisons=pd.concat(pairs, ignore_index=True),
        notes=notes,
        selections=selections,
        classes=classes,
    )


def unmatched_policy(unmatched: str, labels: np.ndarray) -> str:
    """``negative`` or ``drop`` for catalogue galaxies missing from the label table;
    ``auto`` is ``negative`` when the table lists positives only (``labels`` all 1)."""
    if unmatched != "auto":
        return unmatched
    return "negative" if labels.min() == 1 else "drop"


def _write_evaluation(
    adir: AnalysisDir,
    cat: pd.DataFrame,
    cfg: EvaluateConfig,
    result: dict,
    comparisons: pd.DataFrame,
) -> None:
    """Write the CSV tables and the baseline scores (into the catalogue with ``add_columns``)."""
    evaluation = adir.path / "evaluation"
    evaluation.mkdir(parents=True, exist_ok=True)
    for key in ("metrics", "comparisons", "noise_dependence", "purity"):
        _write_csv(result[key], evaluation / f"{key}.csv")
    if len(comparisons.columns):
        atomic_write_parquet(
            pd.concat([cat[["row", "plateifu", "mangaid"]], comparisons], axis=1),
            evaluation / "baseline_scores.parquet",
        )
        if cfg.add_columns:
            adir.write_columns(comparisons)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def _plots(
    scores: pd.DataFrame, name: str, use: np.ndarray, y: np.ndarray, evaluation: Path
) -> None:
    """ROC and precision-recall curves and the percentile distribution of one label set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    from linecube.analysis.scores import percentile

    y = y.astype(bool)
    if y.all() or not y.any():
        return
    figs = {k: plt.subplots(figsize=(5.5, 4.5)) for k in ("roc", "pr", "percentiles")}
    for col in scores.columns:
        s = scores[col].to_numpy(dtype=np.float64)[use]
        ok = np.isfinite(s)
        fpr, tpr, _ = roc_curve(y[ok], s[ok])
        figs["roc"][1].plot(fpr, tpr, label=f"{col} (AUROC {auc(fpr, tpr):.2f})")
        prec, rec, _ = precision_recall_curve(y[ok], s[ok])
        figs["pr"][1].plot(rec, prec, label=col)
        pct = percentile(s[ok])
        figs["percentiles"][1].hist(pct[y[ok]], bins=20, range=(0, 100), histtype="step", label=col)
    figs["roc"][1].plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    labels = {
        "roc": ("false positive rate", "true positive rate"),
        "pr": ("recall", "precision"),
        "percentiles": ("survey percentile of the labelled galaxies", "galaxies"),
    }
    for key, (fig, ax) in figs.items():
        ax.set_xlabel(labels[key][0])
        ax.set_ylabel(labels[key][1])
        ax.set_title(
            f"{key.upper() if key != 'percentiles' else 'percentiles'}: {name}", fontsize=9
        )
        ax.legend(fontsize=7)
        fig.tight_layout()
        with atomic_path(evaluation / f"{key}.png", suffix=".png") as tmp:
            fig.savefig(tmp, dpi=120)
        plt.close(fig)


# ---- ratio-normal classes and per-spaxel evaluation (simulated surveys) ----------------------

def ratio_normal_share(table: pd.DataFrame, column: str | None = "class") -> pd.Series | None:
    """Share of each value of ``column`` whose integrated line ratios are those of its host
    (truth column ``ratio_normal``); None when the table lacks either column."""
    column = find_column(table, column) if column else None
    flag = find_column(table, "ratio_normal")
    if column is None or flag is None:
        return None
    return table.groupby(table[column].astype(str))[flag].mean()


def _with_ratio_normal(df: pd.DataFrame, key: str, share: pd.Series | None) -> pd.DataFrame:
    """``ratio_normal_fraction`` and ``ratio_normal`` (more than half) by the ``key`` column."""
    if share is None:
        return df
    out = df.copy()
    out["ratio_normal_fraction"] = out[key].map(share).astype(float)
    out["ratio_normal"] = out["ratio_normal_fraction"] > 0.5
    return out


def add_ratio_normal(metrics: pd.DataFrame, table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per-class metric rows with the class's ratio-normal share (when the table has it)."""
    return _with_ratio_normal(metrics, "label", ratio_normal_share(table, column))


def pixel_metrics(adir: AnalysisDir, truth_maps: str | Path, store=None,
                  table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Pixel AUROC of the analysis' anomaly maps against ``truth_maps``, with each kind's
    ratio-normal share when ``table`` (the truth table) has it; written to
    ``evaluation/pixel_metrics.csv``."""
    from linecube.analysis.pixel import pixel_evaluation

    store = store if store is not None else adir.open_store()
    pixel = pixel_evaluation(adir.path, store, truth_maps)
    share = ratio_normal_share(table) if table is not None else None
    pixel = _with_ratio_normal(pixel, "kind", share)
    _write_csv(pixel, adir.path / "evaluation" / "pixel_metrics.csv")
    return pixel
