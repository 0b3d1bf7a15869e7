"""BPT classes per spaxel (bpt_maps.zarr) and per galaxy (bpt_class, from a central aperture);
WHAN class per galaxy (whan_class) with EW(Ha) from the source MAPS files.

Kewley et al. (2006) scheme with the Kauffmann et al. (2003) and Kewley et al. (2001) lines;
[SII] is the sum of both lines; every line needs S/N >= --sn-min. Codes of bpt_maps.zarr:
-1 no data, 0 invalid, 1 SF, 2 composite, 3 Seyfert, 4 LINER, 5 ambiguous.

Example:
  linecube bpt analysis --store store --sn-min 3 --aperture-arcsec 2.5
"""

from __future__ import annotations

HELP = "BPT / WHAN classes from the maps"


def add_arguments(parser):
    from linecube.analysis.bpt import BptConfig
    from linecube.cli.common import add_config_arguments

    parser.add_argument("analysis", help="analysis directory")
    parser.add_argument("--store", help="the store (default: the one recorded by embed)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_config_arguments(parser, BptConfig, example="sn_min=5")


def run(args):
    from linecube.analysis.bpt import BptConfig, run_bpt
    from linecube.analysis.layout import AnalysisDir
    from linecube.cli.common import config_from_args

    cfg = config_from_args(BptConfig, args)
    cat = run_bpt(args.analysis, args.store, cfg, progress=not args.no_progress)
    for column, name in (("bpt_class", "BPT"), ("whan_class", "WHAN")):
        counts = cat[column].value_counts()
        print(f"galaxy {name} classes: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    problems = AnalysisDir(args.analysis).info()["steps"]["bpt"]["settings"]["whan_problems"]
    if problems:
        print(
            "note: whan_class is 'unavailable' where EW(Ha) could not be read from the source "
            f"MAPS file, e.g. {problems[0]}"
        )
    return 0
