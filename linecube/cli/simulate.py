"""Simulate a MaNGA-like survey in the real DAP formats, with known truth.

Writes OUT/maps/*.fits.gz (DR17 MAPS files; --format dr15 or mmu for the other layouts),
OUT/dapall-v3_1_1-3.1.0.fits, OUT/truth.parquet (+ truth.fits), OUT/truth_maps.fits (per-spaxel
truth) and OUT/agn_catalogue.fits.
The same --seed gives byte-identical files whatever --workers is; re-running the same command
resumes an interrupted run. Settings (class fractions, noise, rates) come from --config
(TOML/YAML, keys of SimulationConfig) and -o key=value (or --set key=value ...) overrides.

Example:
  linecube simulate --n 500 --out survey --seed 0 --workers 2
"""

from __future__ import annotations

import argparse
import sys

from linecube.cli.common import add_override_argument

HELP = "simulate a MaNGA-like survey (DR17 MAPS files, DAPall, truth, AGN catalogue)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, required=True, help="number of observations")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes (default: %(default)s)")
    parser.add_argument("--full", action="store_true",
                        help="write all 64 (DR17) / 48 (DR15) HDUs, as heavy as real files")
    parser.add_argument("--format", choices=("dr17", "dr15", "mmu"), default="dr17",
                        help="DR17 or DR15 MAPS files, or Multimodal Universe HDF5")
    parser.add_argument("--spaxel-classes", action="store_true",
                        help="also write per-spaxel class maps (OUT/spaxel_classes/)")
    parser.add_argument("--config", help="TOML or YAML file with SimulationConfig keys")
    add_override_argument(parser, "set one config key (repeatable), e.g. "
                          "-o classes.seyfert=0.1")
    parser.add_argument("--set", dest="override", action="extend", nargs="*",
                        metavar="KEY=VALUE", help="set config keys, e.g. --set "
                        "classes.seyfert=0.1 noise_scale=2 (like -o)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from linecube.config import load_config, parse_overrides
    from linecube.simulate import SimulationConfig, simulate_survey

    config = load_config(args.config, SimulationConfig, parse_overrides(args.override),
                         source="-o/--set")
    summary = simulate_survey(args.out, args.n, seed=args.seed, config=config,
                              workers=args.workers, full=args.full, format=args.format,
                              spaxel_classes=args.spaxel_classes,
                              progress=not args.no_progress)
    print(summary)
    if summary.failures:
        print(f"linecube simulate: {len(summary.failures)} observation(s) failed; see above",
              file=sys.stderr)
    return 1 if len(summary.failures) == summary.n_observations else 0
