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
    from linecube.analysis.scores import ScoreConfig
    from linecube.cli.common import add_config_arguments

    parser.add_argument("analysis", help="analysis directory (after linecube embed)")
    parser.add_argument("--top", type=int, default=10,
                        help="print the N most anomalous (default: %(default)s)")
    add_config_arguments(parser, ScoreConfig, example="combine=[\"resid_peak\",\"recon\"]")


def top_table(cat, lines, n):
    """The ``n`` most anomalous galaxies with the line that is worst reconstructed."""
    import numpy as np

    top = cat.sort_values("rank").head(n)
    cols = [c for c in ("rank", "plateifu", "mangaid", "score_combined", "pct_combined",
                        "score_recon", "bpt_class") if c in top]
    table = top[cols].copy()
    pct = top[[f"pct_recon_{ln}" for ln in lines]].to_numpy()
    worst = np.where(
        np.isnan(pct).all(axis=1), -1, np.nanargmax(np.nan_to_num(pct, nan=-1), axis=1)
    )
    table["worst_line"] = [lines[i] if i >= 0 else "" for i in worst]
    return table


def run(args):
    from linecube.analysis.layout import AnalysisDir
    from linecube.analysis.scores import ScoreConfig, score
    from linecube.cli.common import config_from_args, format_table

    cfg = config_from_args(ScoreConfig, args)
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
