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
    parser.add_argument("analysis", help="analysis directory")
    parser.add_argument("--store", help="the store (default: the one recorded by embed)")
    parser.add_argument("--config", help="TOML/YAML file with BPT settings")
    parser.add_argument("--sn-min", type=float, help="minimum S/N of every line (3)")
    parser.add_argument(
        "--aperture-arcsec",
        type=float,
        help="radius of the central aperture for the galaxy class (2.5)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args):
    from linecube.analysis.bpt import BptConfig, run_bpt
    from linecube.analysis.cli_support import make_config
    from linecube.analysis.layout import AnalysisDir

    cfg = make_config(
        BptConfig, args.config, {"sn_min": args.sn_min, "aperture_arcsec": args.aperture_arcsec}
    )
    cat = run_bpt(args.analysis, args.store, cfg, progress=not args.no_progress)
    counts = cat["bpt_class"].value_counts()
    print("galaxy BPT classes: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(
        "galaxy WHAN classes: "
        + ", ".join(f"{k} {v}" for k, v in cat["whan_class"].value_counts().items())
    )
    problems = AnalysisDir(args.analysis).info()["steps"]["bpt"]["settings"]["whan_problems"]
    if problems:
        print(
            "note: whan_class is 'unavailable' where EW(Ha) could not be read from the source "
            f"MAPS file, e.g. {problems[0]}"
        )
    return 0
