"""The k galaxies nearest to a given one in latent space, with distances.

Example:
  linecube similar analysis 8485-1901 --k 10 --metric cosine
"""

from __future__ import annotations

HELP = "nearest neighbours of a galaxy in latent space"


def add_arguments(parser):
    parser.add_argument("analysis", help="analysis directory (after linecube embed)")
    parser.add_argument("plateifu", help="the query galaxy, e.g. 8485-1901")
    parser.add_argument("--k", type=int, default=10, help="neighbours (10)")
    parser.add_argument(
        "--metric",
        choices=["euclidean", "manhattan", "cosine"],
        default="euclidean",
        help="latent-space distance (euclidean)",
    )
    parser.add_argument(
        "--backend",
        choices=["auto", "kdtree", "brute"],
        default="auto",
        help="index (auto: KD-tree up to 8 dimensions, else brute force)",
    )
    parser.add_argument("--csv", help="also write the table to this CSV file")


def run(args):
    from linecube.analysis.cli_support import format_table
    from linecube.analysis.similar import similar

    table = similar(
        args.analysis, args.plateifu, k=args.k, metric=args.metric, backend=args.backend
    )
    print(f"{len(table)} nearest neighbours of {args.plateifu} ({args.metric} distance):")
    print(format_table(table))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0
