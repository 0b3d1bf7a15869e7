"""Anomaly scores: latent-space detectors, robust standardisation, percentiles and a rank.

Needs `linecube embed` first (it computes the reconstruction errors). Higher scores are more
anomalous (as in PyOD); raw scores are kept as score_*, percentiles as pct_* (0-100),
score_combined averages the robust z-scores of the chosen scores, rank 1 is the most anomalous,
and flag_anomaly marks pct_combined >= --threshold-pct.

Example:
  linecube score analysis --top 20
"""

from __future__ import annotations

HELP = "anomaly scores, percentiles and a combined rank; prints the top N"


def add_arguments(parser):
    parser.add_argument("analysis", help="analysis directory (after linecube embed)")
    parser.add_argument("--config", help="TOML/YAML file with score settings")
    parser.add_argument(
        "--detectors",
        nargs="+",
        help="iforest knn lof [ecod copod with PyOD] (default: all available)",
    )
    parser.add_argument("--k", type=int, help="neighbours of knn and lof (10)")
    parser.add_argument("--n-estimators", type=int, help="isolation-forest trees (200)")
    parser.add_argument(
        "--combine", nargs="+", help="scores in score_combined (default: resid_peak, the calibrated residual peak)"
    )
    parser.add_argument(
        "--threshold-pct", type=float, help="flag galaxies with pct_combined >= this (99)"
    )
    parser.add_argument("--seed", type=int, help="seed of the isolation forest (0)")
    parser.add_argument("--top", type=int, default=10, help="print the N most anomalous (10)")


def top_table(cat, lines, n):
    """The ``n`` most anomalous galaxies with the line that is worst reconstructed."""
    import numpy as np

    top = cat.sort_values("rank").head(n)
    cols = [
        c
        for c in (
            "rank",
            "plateifu",
            "mangaid",
            "score_combined",
            "pct_combined",
            "score_recon",
            "bpt_class",
        )
        if c in top
    ]
    table = top[cols].copy()
    pct = top[[f"pct_recon_{ln}" for ln in lines]].to_numpy()
    worst = np.where(
        np.isnan(pct).all(axis=1), -1, np.nanargmax(np.nan_to_num(pct, nan=-1), axis=1)
    )
    table["worst_line"] = [lines[i] if i >= 0 else "" for i in worst]
    return table


def run(args):
    from linecube.analysis.cli_support import format_table, make_config
    from linecube.analysis.layout import AnalysisDir
    from linecube.analysis.scores import ScoreConfig, score

    cfg = make_config(
        ScoreConfig,
        args.config,
        {
            "detectors": args.detectors,
            "k": args.k,
            "n_estimators": args.n_estimators,
            "combine": args.combine,
            "threshold_pct": args.threshold_pct,
            "seed": args.seed,
        },
    )
    cat, notes = score(args.analysis, cfg)
    for note in notes:
        print(f"note: {note}")
    lines = AnalysisDir(args.analysis).info()["lines"]
    flagged = int(cat["flag_anomaly"].sum())
    print(
        f"scored {len(cat)} galaxies; {flagged} flagged (pct_combined >= {cfg.threshold_pct}, "
        "a fixed survey percentile)"
    )
    print(format_table(top_table(cat, lines, args.top)))
    return 0
