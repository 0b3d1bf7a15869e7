"""Evaluate every anomaly score against a label table, with baselines and BPT purity.

The table (FITS, Parquet or CSV) needs a PLATEIFU or MANGAID column; the label is --label-column
(default: is_agn, or any of the MaNGA AGN VAC flags WISE_AGN, BAT_AGN, RADIO_AGN, BROAD_AGN).
Only galaxies the network did not train on are evaluated when there are any (--sample), and
baselines are then fitted on the network's training galaxies. Every pair of scores is compared
by a paired bootstrap of the AUROC difference: "A beats B" only when its 95 % interval excludes 0.
Writes ANALYSIS_DIR/evaluation/: metrics.csv, comparisons.csv, noise_dependence.csv (with
--per-class), purity.csv, roc.png, pr.png, percentiles.png.

Examples:
  linecube evaluate analysis --labels manga_agn-v1_0_1.fits --compare pca ratio_iforest
  linecube evaluate analysis --labels sim/truth.parquet --label-column class --per-class \\
      --compare conv2d=analysis_conv2d
"""

from __future__ import annotations

HELP = "AUROC, AP, precision@k, recall, percentiles of labelled galaxies; baselines"
METRIC_COLUMNS = ("label", "score", "n_positive", "auroc", "auroc_lo", "auroc_hi",
                  "average_precision", "precision_at_{top_k}", "recall_top5pct", "pct_p50",
                  "ratio_normal")


def add_arguments(parser):
    from linecube.analysis.evaluate import EvaluateConfig
    from linecube.cli.common import add_config_arguments

    parser.add_argument("analysis", help="analysis directory (after linecube score)")
    parser.add_argument("--labels", required=True, help="label table (.fits, .parquet, .csv)")
    add_config_arguments(parser, EvaluateConfig, aliases={"compare": ("--model",)},
                         example="fractions=[0.01,0.1]")


def print_result(result: dict, top_k: int) -> None:
    """The metrics, the paired comparisons that showed a difference, the noise dependence,
    the BPT purity and the pixel evaluation, as terminal tables."""
    from linecube.cli.common import format_table

    for note in result["notes"]:
        print(f"labels: {note}")
    metrics = result["metrics"]
    shown = [c.format(top_k=top_k) for c in METRIC_COLUMNS]
    print(format_table(metrics[[c for c in shown if c in metrics]]))
    pairs = result["comparisons"]
    if len(pairs):
        differ = pairs[pairs["verdict"] != "no difference shown"]
        print(f"paired AUROC comparisons (95 % interval excludes 0): {len(differ)} of {len(pairs)}")
        if len(differ):
            print(format_table(differ[["label", "verdict", "auroc_diff", "auroc_diff_lo",
                                       "auroc_diff_hi"]]))
    tables = (("noise_dependence", "Spearman correlation with the noise floor and the coverage "
               "(IFU size) inside the normal classes:"), ("purity", "nearest-neighbour BPT purity:"),
              ("pixel", "per-spaxel evaluation against the truth maps:"))
    for key, heading in tables:
        if key in result and len(result[key]):
            print(heading)
            print(format_table(result[key]))


def run(args):
    from linecube.analysis.evaluate import EvaluateConfig, evaluate
    from linecube.cli.common import config_from_args

    cfg = config_from_args(EvaluateConfig, args)
    print_result(evaluate(args.analysis, args.labels, cfg), cfg.top_k)
    print(f"tables and plots in {args.analysis}/evaluation/")
    return 0
