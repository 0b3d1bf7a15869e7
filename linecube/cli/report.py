"""Write a self-contained HTML report of an analysis directory.

The report shows score distributions by class, the UMAP coloured by score, BPT class and
labels, the top N anomalies (input, reconstruction, residual and error maps of every line, the
BPT map and per-line errors) and the evaluation tables. Every figure is also written as PNG
and PDF under REPORT_DIR/figures/.

Example:
    linecube report runs/analysis --out runs/report --top 30
"""

from __future__ import annotations

import argparse

from linecube.cli.common import add_page_arguments

HELP = "write a static HTML report (with PNG/PDF figures) of an analysis"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the verb's arguments."""
    add_page_arguments(parser, "from embed/score/umap/bpt", "report")
    parser.add_argument("--top", type=int, default=20,
                        help="number of most anomalous galaxies shown in full "
                        "(default: %(default)s)")
    parser.add_argument("--title", default="linecube analysis report", help="page title")


def run(args: argparse.Namespace) -> int:
    """Build the report and print where it is."""
    from linecube.viz.report import build_report

    index = build_report(args.analysis_dir, args.out, top=args.top, labels=args.labels,
                         label_columns=args.label_columns, title=args.title)
    print(f"report written to {index}")
    return 0
