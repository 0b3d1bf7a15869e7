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


def add_arguments(parser):
    parser.add_argument("analysis", help="analysis directory (after linecube score)")
    parser.add_argument("--labels", required=True, help="label table (.fits, .parquet, .csv)")
    parser.add_argument("--config", help="TOML/YAML file with evaluate settings")
    parser.add_argument("--label-column", help="label column (default: is_agn or AGN VAC flags)")
    parser.add_argument("--positive", help="value of a text label column that marks the class")
    parser.add_argument(
        "--per-class",
        action="store_true",
        default=None,
        help="evaluate every value of --label-column as its own class",
    )
    parser.add_argument(
        "--unmatched",
        choices=["auto", "negative", "drop"],
        help="catalogue galaxies missing from the table (auto)",
    )
    parser.add_argument("--scores", nargs="+", help="score columns (default: all score_*)")
    parser.add_argument(
        "--compare",
        "--model",
        dest="compare",
        nargs="+",
        help="baselines (pca, ratio_iforest) and/or [NAME=]ANALYSIS_DIR",
    )
    parser.add_argument("--top-k", type=int, help="k of precision at k (50)")
    parser.add_argument("--n-bootstrap", type=int, help="bootstrap draws (1000)")
    parser.add_argument("--purity-k", type=int, help="neighbours for BPT purity (10; 0 skips)")
    parser.add_argument("--pca-components", type=int, help="PCA baseline components")
    parser.add_argument(
        "--add-columns",
        action="store_true",
        default=None,
        help="write baseline scores into the catalogue too",
    )
    parser.add_argument(
        "--sample",
        choices=["auto", "out_of_sample", "all"],
        help="galaxies evaluated: out of sample when there are any (auto)",
    )
    parser.add_argument("--seed", type=int, help="seed (0)")
    parser.add_argument(
        "--pixel-truth",
        help="simulated survey's truth_maps.fits: pixel AUROC of the per-spaxel anomaly maps",
    )


def run(args):
    from linecube.analysis.cli_support import format_table, make_config
    from linecube.analysis.evaluate import EvaluateConfig, evaluate

    cfg = make_config(
        EvaluateConfig,
        args.config,
        {
            "label_column": args.label_column,
            "positive": args.positive,
            "per_class": args.per_class,
            "unmatched": args.unmatched,
            "scores": args.scores,
            "compare": args.compare,
            "top_k": args.top_k,
            "n_bootstrap": args.n_bootstrap,
            "purity_k": args.purity_k,
            "pca_components": args.pca_components,
            "add_columns": args.add_columns,
            "sample": args.sample,
            "seed": args.seed,
            "pixel_truth": args.pixel_truth,
        },
    )
    result = evaluate(args.analysis, args.labels, cfg)
    for note in result["notes"]:
        print(f"labels: {note}")
    m = result["metrics"]
    show = [
        c
        for c in (
            "label",
            "score",
            "n_positive",
            "auroc",
            "auroc_lo",
            "auroc_hi",
            "average_precision",
            f"precision_at_{cfg.top_k}",
            "recall_top5pct",
            "pct_p50",
            "ratio_normal",
        )
        if c in m
    ]
    print(format_table(m[show]))
    pairs = result["comparisons"]
    if len(pairs):
        shown = pairs[pairs["verdict"] != "no difference shown"]
        print(f"paired AUROC comparisons (95 % interval excludes 0): {len(shown)} of {len(pairs)}")
        if len(shown):
            print(format_table(shown[["label", "verdict", "auroc_diff", "auroc_diff_lo",
                                      "auroc_diff_hi"]]))
    if len(result["noise_dependence"]):
        print("Spearman correlation with the noise floor inside the normal classes:")
        print(format_table(result["noise_dependence"]))
    if len(result["purity"]):
        print("nearest-neighbour BPT purity:")
        print(format_table(result["purity"]))
    if "pixel" in result:
        print("per-spaxel evaluation against the truth maps:")
        print(format_table(result["pixel"]))
    print(f"tables and plots in {args.analysis}/evaluation/")
    return 0
