"""Ingest MaNGA MAPS / Multimodal Universe HDF5 files into a training store, in parallel (Dask).

INPUTS are files, folders (searched recursively, in any case, for *.fits, *.fits.gz, *.fit,
*.fit.gz, *.hdf5, *.h5) or text files listing paths. Files already in the store are skipped, so
re-running (or resuming a killed run) only does the remaining work. Rejected files are listed
with the reason in STORE/rejections.parquet. The exit status is 1 if nothing could be ingested
and 2 if the store is unusable (other settings, corrupt, or being written by another ingest).

examples:
  linecube ingest maps/ --out store
  linecube ingest maps/ --out store --config preprocess.toml -o size=80 -o lines=strong
  linecube ingest files.txt --out store --scheduler tcp://10.0.0.5:8786
"""

from __future__ import annotations

import argparse

from linecube.cli.common import add_override_argument

HELP = "ingest MAPS / HDF5 files into a training store (parallel, resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="files, folders or text files listing paths")
    parser.add_argument("--out", required=True, metavar="STORE", help="store directory")
    parser.add_argument("--config", metavar="FILE",
                        help="preprocessing config (TOML or YAML; keys of PreprocessConfig)")
    add_override_argument(parser, "set one preprocessing option (repeatable), e.g. -o size=80")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="address of an existing Dask scheduler (default: a local cluster)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="workers of the local cluster (default: all cores)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="galaxies per commit to the store (default: 64)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from linecube.config import load_config, parse_overrides
    from linecube.preprocess.config import PreprocessConfig
    from linecube.store.ingest import ingest

    cfg = load_config(args.config, PreprocessConfig, parse_overrides(args.override), source="-o")
    report = ingest(args.inputs, args.out, cfg, scheduler=args.scheduler, workers=args.workers,
                    progress=not args.no_progress, batch_size=args.batch_size)
    print(report.summary())
    return 0 if report.ok else 1
