"""The k galaxies nearest to a given one in latent space, with distances.

Example:
  linecube similar analysis 8485-1901 --k 10 --metric cosine
"""

from __future__ import annotations

HELP = "nearest neighbours of a galaxy in latent space"


def add_arguments(parser):
    from linecube.analysis.similar import SimilarConfig
    from linecube.cli.common import add_config_arguments

    parser.add_argument("analysis", help="analysis directory (after linecube embed)")
    parser.add_argument("plateifu", help="the query galaxy, e.g. 8485-1901")
    parser.add_argument("--csv", help="also write the table to this CSV file")
    add_config_arguments(parser, SimilarConfig, example="metric=cosine")


def run(args):
    from linecube.analysis.similar import SimilarConfig, similar
    from linecube.cli.common import config_from_args, format_table

    cfg = config_from_args(SimilarConfig, args)
    table = similar(args.analysis, args.plateifu, **cfg.model_dump())
    print(f"{len(table)} nearest neighbours of {args.plateifu} ({cfg.metric} distance):")
    print(format_table(table))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0
