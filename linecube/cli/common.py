"""Arguments shared by several verbs."""

from __future__ import annotations

import argparse


def add_label_arguments(parser: argparse.ArgumentParser) -> None:
    """``--labels TABLE`` and ``--label-columns``: the label table whose classes colour figures."""
    parser.add_argument("--labels", default=None, metavar="TABLE",
                        help="label table (FITS, Parquet or CSV with PLATEIFU or MANGAID) whose "
                        "classes colour the figures")
    parser.add_argument("--label-columns", nargs="+", default=None, metavar="COLUMN",
                        help="columns of --labels to show (default: class, label, is_agn or "
                        "the AGN VAC flags present)")
